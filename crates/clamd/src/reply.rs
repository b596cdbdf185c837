//! Replies, formatted as clamd 1.4.6 formats them (`clamd/session.c`,
//! `clamd/thrmgr.c`).

use crate::command::{Delimiter, VERSION_COMMANDS};

/// Formats the replies of one command: the terminator the client chose and,
/// inside an IDSESSION, the command's number as a `N: ` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replier {
    term: u8,
    id: Option<u32>,
}

impl Replier {
    /// Replies to a command framed with `delimiter`; `session_id` is its
    /// number inside an IDSESSION (the first command after IDSESSION is 1).
    pub fn new(delimiter: Delimiter, session_id: Option<u32>) -> Replier {
        Replier {
            term: delimiter.terminator(),
            id: session_id,
        }
    }

    fn start(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(64);
        if let Some(id) = self.id {
            v.extend_from_slice(id.to_string().as_bytes());
            v.extend_from_slice(b": ");
        }
        v
    }

    fn finish(&self, mut v: Vec<u8>) -> Vec<u8> {
        v.push(self.term);
        v
    }

    fn with_path(&self, path: Option<&[u8]>) -> Vec<u8> {
        let mut v = self.start();
        if let Some(p) = path {
            v.extend_from_slice(p);
            v.extend_from_slice(b": ");
        }
        v
    }

    /// `[path: ]status` (clamd's `conn_reply_single`): `OK`, `PONG`,
    /// `UNKNOWN COMMAND`, `stream: OK`.
    pub fn single(&self, path: Option<&[u8]>, status: &str) -> Vec<u8> {
        let mut v = self.with_path(path);
        v.extend_from_slice(status.as_bytes());
        self.finish(v)
    }

    /// `[path: ]msg status` (clamd's `conn_reply`).
    pub fn reply(&self, path: Option<&[u8]>, msg: &str, status: &str) -> Vec<u8> {
        let mut v = self.with_path(path);
        v.extend_from_slice(msg.as_bytes());
        v.push(b' ');
        v.extend_from_slice(status.as_bytes());
        self.finish(v)
    }

    /// `msg ERROR`, as `INSTREAM size limit exceeded. ERROR`.
    pub fn error(&self, msg: &str) -> Vec<u8> {
        self.reply(None, msg, "ERROR")
    }

    /// `path: prefix strerror. ERROR`, as `File path check failure: No such
    /// file or directory. ERROR`.
    pub fn errno(&self, path: &[u8], prefix: &str, errno: i32) -> Vec<u8> {
        let status = format!("{}. ERROR", clamd_strerror(errno));
        self.reply(Some(path), prefix, &status)
    }

    /// `path: Name FOUND`.
    pub fn virus(&self, path: &[u8], name: &str) -> Vec<u8> {
        let mut v = self.with_path(Some(path));
        v.extend_from_slice(name.as_bytes());
        v.extend_from_slice(b" FOUND");
        self.finish(v)
    }

    /// `text` with the terminator and no session prefix, as clamd sends
    /// `RELOADING`.
    pub fn unprefixed(&self, text: &str) -> Vec<u8> {
        let mut v = text.as_bytes().to_vec();
        v.push(self.term);
        v
    }

    /// `PONG`.
    pub fn pong(&self) -> Vec<u8> {
        self.single(None, "PONG")
    }

    /// The VERSION reply: `version` is the whole text (`ClamAV 1.4.6/...`).
    pub fn version(&self, version: &str) -> Vec<u8> {
        self.single(None, version)
    }

    /// The VERSIONCOMMANDS reply: `version| COMMANDS: SCAN QUIT ...`.
    pub fn version_commands(&self, version: &str) -> Vec<u8> {
        let mut v = self.start();
        v.extend_from_slice(version.as_bytes());
        v.extend_from_slice(b"| COMMANDS:");
        for c in VERSION_COMMANDS {
            v.push(b' ');
            v.extend_from_slice(c.as_bytes());
        }
        self.finish(v)
    }

    /// The STATS reply, in the layout of clamd's `thrmgr_printstats`.
    pub fn stats(&self, s: &StatsReport) -> Vec<u8> {
        let mut t = String::with_capacity(256);
        t.push_str("POOLS: 1\n\n");
        t.push_str(if s.valid {
            "STATE: VALID PRIMARY\n"
        } else {
            "STATE: INVALID PRIMARY\n"
        });
        t.push_str(&format!(
            "THREADS: live {}  idle {} max {} idle-timeout {}\n",
            s.live, s.idle, s.max, s.idle_timeout
        ));
        t.push_str(&format!("QUEUE: {} items\n", s.queued));
        for task in &s.tasks {
            t.push_str(&format!(
                "\t{} {:.6} {}\n",
                task.command, task.seconds, task.filename
            ));
        }
        t.push('\n');
        t.push_str(&format!(
            "MEMSTATS: heap N/A mmap N/A used N/A free N/A releasable N/A pools 1 pools_used {:.3}M pools_total {:.3}M\n",
            s.mem_used as f64 / (1024.0 * 1024.0),
            s.mem_total as f64 / (1024.0 * 1024.0)
        ));
        t.push_str("END");
        let mut v = self.start();
        v.extend_from_slice(t.as_bytes());
        self.finish(v)
    }
}

/// What STATS reports.
#[derive(Debug, Clone, Default)]
pub struct StatsReport {
    /// The database is loaded and serving.
    pub valid: bool,
    /// Threads working (clamd: live threads).
    pub live: u32,
    /// Threads idle.
    pub idle: u32,
    /// MaxThreads.
    pub max: u32,
    /// IdleTimeout, seconds.
    pub idle_timeout: u32,
    /// Jobs waiting for a thread.
    pub queued: u32,
    /// Active tasks.
    pub tasks: Vec<StatsTask>,
    /// Bytes of memory in use by the database (clamd: pools_used).
    pub mem_used: u64,
    /// Bytes of memory held (clamd: pools_total).
    pub mem_total: u64,
}

/// One active task in STATS.
#[derive(Debug, Clone)]
pub struct StatsTask {
    /// The command name (`SCAN`, `INSTREAM`).
    pub command: String,
    /// Seconds since it started.
    pub seconds: f64,
    /// The file being scanned, or empty.
    pub filename: String,
}

/// glibc's `strerror` text for an errno, without Rust's ` (os error N)`
/// suffix: clamd prints `strerror` in its replies.
pub fn clamd_strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_clamd() {
        let n = Replier::new(Delimiter::Newline, None);
        let z = Replier::new(Delimiter::Nul, None);
        let s = Replier::new(Delimiter::Newline, Some(3));
        assert_eq!(n.pong(), b"PONG\n");
        assert_eq!(z.pong(), b"PONG\0");
        assert_eq!(s.pong(), b"3: PONG\n");
        assert_eq!(n.single(None, "UNKNOWN COMMAND"), b"UNKNOWN COMMAND\n");
        assert_eq!(
            n.virus(b"/tmp/x", "Eicar-Test-Signature"),
            b"/tmp/x: Eicar-Test-Signature FOUND\n"
        );
        assert_eq!(s.single(Some(b"stream"), "OK"), b"3: stream: OK\n");
        assert_eq!(
            n.errno(b"/nonexistent/x", "File path check failure:", 2),
            b"/nonexistent/x: File path check failure: No such file or directory. ERROR\n".to_vec()
        );
        assert_eq!(
            n.error("INSTREAM size limit exceeded."),
            b"INSTREAM size limit exceeded. ERROR\n"
        );
        assert_eq!(
            s.error("Command invalid inside IDSESSION."),
            b"3: Command invalid inside IDSESSION. ERROR\n"
        );
        assert_eq!(
            n.reply(Some(b"/dev/null"), "Not supported file type", "ERROR"),
            b"/dev/null: Not supported file type ERROR\n"
        );
        assert_eq!(
            n.version_commands("ClamAV 1.4.6"),
            b"ClamAV 1.4.6| COMMANDS: SCAN QUIT RELOAD PING CONTSCAN VERSIONCOMMANDS VERSION END SHUTDOWN MULTISCAN FILDES STATS IDSESSION INSTREAM DETSTATSCLEAR DETSTATS ALLMATCHSCAN\n".to_vec()
        );
    }

    #[test]
    fn stats_layout() {
        let r = StatsReport {
            valid: true,
            live: 1,
            idle: 0,
            max: 3,
            idle_timeout: 30,
            queued: 0,
            tasks: vec![StatsTask {
                command: "STATS".into(),
                seconds: 0.000007,
                filename: String::new(),
            }],
            mem_used: 6168723,
            mem_total: 6253707,
        };
        let text = Replier::new(Delimiter::Newline, None).stats(&r);
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "POOLS: 1\n\nSTATE: VALID PRIMARY\nTHREADS: live 1  idle 0 max 3 idle-timeout 30\nQUEUE: 0 items\n\tSTATS 0.000007 \n\nMEMSTATS: heap N/A mmap N/A used N/A free N/A releasable N/A pools 1 pools_used 5.883M pools_total 5.964M\nEND\n"
        );
    }
}
