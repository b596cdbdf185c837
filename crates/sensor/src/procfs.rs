//! Reading `/proc`: start times (for process keys), exec details, and whole-table
//! snapshots for resync.
//!
//! The parsers (`parse_stat`, `parse_status_ids`, `split_cmdline`) are pure. The
//! readers go through [`crate::sys::ProcDir`] so one read never mixes two
//! holders of a PID, and every read is checked against the start time the caller
//! expects: a PID that now belongs to someone else gives `MissingReason::Reused`
//! and no details at all.

use std::io;
use std::path::{Path, PathBuf};

use aether_events::{BootId, MissingReason, ProcessDetails};

use crate::sys::{self, ProcDir};

/// The fields of `/proc/<pid>/stat` the sensor uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Process state letter (`R`, `S`, `Z`, ...).
    pub state: u8,
    /// Parent process id (field 4).
    pub ppid: u32,
    /// Start time in clock ticks since boot (field 22).
    pub start_time: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_stat(b: &[u8]) -> Option<Stat> {
    let close = b.iter().rposition(|&c| c == b')')?;
    let rest = std::str::from_utf8(b.get(close + 1..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    let ppid = fields.next()?.parse().ok()?;
    // Fields 5..=21 are 17 fields between ppid and starttime.
    let start_time = fields.nth(17)?.parse().ok()?;
    Some(Stat {
        state,
        ppid,
        start_time,
    })
}

/// The real and effective ids on the `Uid:` (or `Gid:`) line of `/proc/<pid>/status`.
pub fn parse_status_ids(b: &[u8], label: &str) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(b).ok()?;
    let line = text.lines().find(|l| l.starts_with(label))?;
    let mut it = line.get(label.len()..)?.split_ascii_whitespace();
    let real = it.next()?.parse().ok()?;
    let effective = it.next()?.parse().ok()?;
    Some((real, effective))
}

/// Splits `/proc/<pid>/cmdline` (NUL-separated) into arguments.
pub fn split_cmdline(b: &[u8]) -> Vec<String> {
    let b = b.strip_suffix(&[0]).unwrap_or(b);
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|&c| c == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Which start time a read must find for its details to count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartCheck {
    /// Exactly this start time (known from an earlier read).
    Exact(u64),
    /// Any start time up to this tick: the process existed when the kernel reported
    /// the event (derived from the event's timestamp), and a process started later
    /// cannot be the one the event was about.
    NotAfter(u64),
    /// Within one tick of this start time (derived from a fork event's timestamp).
    Near(u64),
}

impl StartCheck {
    /// Whether a process that started at `start` passes.
    pub fn accepts(self, start: u64) -> bool {
        match self {
            StartCheck::Exact(t) => start == t,
            StartCheck::NotAfter(t) => start <= t,
            StartCheck::Near(t) => start.abs_diff(t) <= 1,
        }
    }
}

/// What one read of `/proc/<pid>` found.
#[derive(Clone, Debug, Default)]
pub struct Read {
    /// `stat`, when it was read and passed the start-time check.
    pub stat: Option<Stat>,
    /// `exe`.
    pub exe: Option<String>,
    /// Real uid.
    pub uid: Option<u32>,
    /// The rest.
    pub details: ProcessDetails,
    /// `CLOCK_MONOTONIC` time at which the read ended.
    pub read_done_ns: u64,
}

fn reason(e: &io::Error) -> MissingReason {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ESRCH) => MissingReason::Gone,
        Some(libc::EACCES) | Some(libc::EPERM) => MissingReason::Denied,
        _ => MissingReason::Unreadable,
    }
}

/// Access to a `/proc` tree and the clocks that relate its times to the kernel's.
#[derive(Clone, Debug)]
pub struct ProcFs {
    root: PathBuf,
    ticks_per_sec: u64,
    boot_offset_ns: u64,
}

impl ProcFs {
    /// `/proc` at `root` (normally `/proc`).
    pub fn new(root: impl Into<PathBuf>) -> ProcFs {
        // Start times count CLOCK_BOOTTIME; event timestamps CLOCK_MONOTONIC. They
        // differ by the time spent suspended, taken once here (a server does not
        // suspend; after a suspend a derived start time may be off and is only used
        // as an upper bound).
        let mono = sys::monotonic_ns();
        let boot = sys::boottime_ns();
        ProcFs {
            root: root.into(),
            ticks_per_sec: sys::clock_ticks_per_sec(),
            boot_offset_ns: boot.saturating_sub(mono),
        }
    }

    /// The root this reads.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The boot id (`sys/kernel/random/boot_id`).
    pub fn boot_id(&self) -> io::Result<BootId> {
        let text = std::fs::read_to_string(self.root.join("sys/kernel/random/boot_id"))?;
        BootId::parse(&text).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("bad boot id {text:?}"))
        })
    }

    /// The start-time tick of an instant given in `CLOCK_MONOTONIC` nanoseconds.
    pub fn tick_of(&self, monotonic_ns: u64) -> u64 {
        let per_tick = 1_000_000_000 / self.ticks_per_sec.max(1);
        monotonic_ns.saturating_add(self.boot_offset_ns) / per_tick.max(1)
    }

    /// Reads only `stat`.
    pub fn stat(&self, pid: u32) -> io::Result<Stat> {
        let dir = ProcDir::open(&self.root, pid)?;
        let mut buf = Vec::with_capacity(512);
        dir.read("stat", &mut buf, 4096)?;
        parse_stat(&buf)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unparsable stat"))
    }

    /// Thread ids of `pid`.
    pub fn threads(&self, pid: u32) -> io::Result<Vec<u32>> {
        ProcDir::open(&self.root, pid)?.threads()
    }

    /// Reads what an exec event needs: stat (checked), exe, cmdline, cwd, uids.
    /// Whatever cannot be read is `None`, with the first reason in `details.missing`.
    pub fn read(&self, pid: u32, check: StartCheck) -> Read {
        let mut out = self.read_inner(pid, check);
        out.read_done_ns = sys::monotonic_ns();
        out
    }

    fn read_inner(&self, pid: u32, check: StartCheck) -> Read {
        let mut out = Read::default();
        let missing = |out: &mut Read, r: MissingReason| {
            out.details.missing.get_or_insert(r);
        };
        let dir = match ProcDir::open(&self.root, pid) {
            Ok(d) => d,
            Err(e) => {
                missing(&mut out, reason(&e));
                return out;
            }
        };
        let mut buf = Vec::with_capacity(4096);
        match dir.read("stat", &mut buf, 4096) {
            Ok(()) => match parse_stat(&buf) {
                Some(st) if !check.accepts(st.start_time) => {
                    missing(&mut out, MissingReason::Reused);
                    return out;
                }
                Some(st) if st.state == b'Z' || st.state == b'X' => {
                    missing(&mut out, MissingReason::Gone);
                    out.stat = Some(st);
                    return out;
                }
                Some(st) => out.stat = Some(st),
                None => {
                    missing(&mut out, MissingReason::Unreadable);
                    return out;
                }
            },
            Err(e) => {
                missing(&mut out, reason(&e));
                return out;
            }
        }
        match dir.readlink("exe") {
            Ok(p) => out.exe = Some(String::from_utf8_lossy(&p).into_owned()),
            Err(e) => missing(&mut out, reason(&e)),
        }
        match dir.read("cmdline", &mut buf, 64 * 1024) {
            Ok(()) => out.details.argv = Some(split_cmdline(&buf)),
            Err(e) => missing(&mut out, reason(&e)),
        }
        match dir.readlink("cwd") {
            Ok(p) => out.details.cwd = Some(String::from_utf8_lossy(&p).into_owned()),
            Err(e) => missing(&mut out, reason(&e)),
        }
        match dir.read("status", &mut buf, 16 * 1024) {
            Ok(()) => match parse_status_ids(&buf, "Uid:") {
                Some((r, e)) => {
                    out.uid = Some(r);
                    out.details.euid = Some(e);
                }
                None => missing(&mut out, MissingReason::Unreadable),
            },
            Err(e) => missing(&mut out, reason(&e)),
        }
        // A process that exits while we read leaves an empty cmdline and unreadable
        // links behind; an empty cmdline with everything else missing is not an argv.
        if out.exe.is_none() && out.details.argv.as_ref().is_some_and(|a| a.is_empty()) {
            out.details.argv = None;
        }
        out
    }

    /// Every process in `/proc` with its stat. Processes that vanish while listing
    /// are left out.
    pub fn list(&self) -> io::Result<Vec<(u32, Stat)>> {
        let mut out = Vec::with_capacity(512);
        for entry in std::fs::read_dir(&self.root)? {
            let Ok(entry) = entry else { continue };
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Ok(st) = self.stat(pid) {
                out.push((pid, st));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &[u8] = b"4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn stat_parses_past_a_hostile_comm() {
        let st = parse_stat(STAT).unwrap();
        assert_eq!(
            st,
            Stat {
                state: b'S',
                ppid: 1,
                start_time: 987654
            }
        );
    }

    #[test]
    fn short_or_garbled_stat_is_none() {
        let end_of_start = STAT.windows(6).position(|w| w == b"987654").unwrap();
        for cut in 0..end_of_start {
            assert_eq!(parse_stat(&STAT[..cut]), None, "cut at {cut}");
        }
        assert_eq!(parse_stat(b"1 (x) S notanumber"), None);
    }

    #[test]
    fn status_ids_parse() {
        let s = b"Name:\tsh\nUid:\t1000\t0\t0\t0\nGid:\t100\t100\t100\t100\n";
        assert_eq!(parse_status_ids(s, "Uid:"), Some((1000, 0)));
        assert_eq!(parse_status_ids(s, "Gid:"), Some((100, 100)));
        assert_eq!(parse_status_ids(b"Name:\tsh\n", "Uid:"), None);
    }

    #[test]
    fn cmdline_splits() {
        assert_eq!(
            split_cmdline(b"sh\0-c\0echo hi\0"),
            vec!["sh", "-c", "echo hi"]
        );
        assert_eq!(split_cmdline(b""), Vec::<String>::new());
        assert_eq!(split_cmdline(b"a\0\0b\0"), vec!["a", "", "b"]);
        assert_eq!(split_cmdline(b"\xff\0"), vec!["\u{fffd}"]);
    }

    #[test]
    fn a_fake_proc_tree_is_read_with_start_checks() {
        let dir = std::env::temp_dir().join(format!("aether-procfs-{}", std::process::id()));
        let p = dir.join("4242");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("stat"), STAT).unwrap();
        std::fs::write(p.join("cmdline"), b"prog\0arg\0").unwrap();
        std::fs::write(p.join("status"), b"Uid:\t7\t8\t8\t8\n").unwrap();
        std::os::unix::fs::symlink("/usr/bin/prog", p.join("exe")).unwrap();
        std::os::unix::fs::symlink("/tmp", p.join("cwd")).unwrap();
        let fs = ProcFs::new(&dir);

        let r = fs.read(4242, StartCheck::Exact(987654));
        assert_eq!(r.exe.as_deref(), Some("/usr/bin/prog"));
        assert_eq!(r.uid, Some(7));
        assert_eq!(r.details.euid, Some(8));
        assert_eq!(
            r.details.argv,
            Some(vec!["prog".to_string(), "arg".to_string()])
        );
        assert_eq!(r.details.cwd.as_deref(), Some("/tmp"));
        assert_eq!(r.details.missing, None);

        // Someone else's start time: nothing is taken.
        let r = fs.read(4242, StartCheck::Exact(1));
        assert_eq!(r.details.missing, Some(MissingReason::Reused));
        assert!(r.exe.is_none() && r.details.argv.is_none() && r.stat.is_none());
        let r = fs.read(4242, StartCheck::NotAfter(987653));
        assert_eq!(r.details.missing, Some(MissingReason::Reused));

        // Gone.
        let r = fs.read(4243, StartCheck::NotAfter(u64::MAX));
        assert_eq!(r.details.missing, Some(MissingReason::Gone));

        let listed = fs.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0, 4242);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
