//! Every system call the sensor makes, in one place, each failure naming its call.
//!
//! The rest of the crate never calls `libc` directly: the connector socket, the
//! `/proc` directory reads, clocks and thread naming are here, so the logic around
//! them stays plain Rust that can be read (and tested) without a kernel.

mod netlink;
mod procdir;

use std::io;
use std::os::unix::fs::MetadataExt as _;

pub use netlink::{ConnectorSocket, PROC_CN_MCAST_IGNORE, PROC_CN_MCAST_LISTEN, RecvBatch};
pub use procdir::ProcDir;

/// A failed system call: which one, and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("{call} failed: {io_error}")]
pub struct SyscallError {
    /// The call, e.g. `"setsockopt(SO_RCVBUFFORCE)"`.
    pub call: &'static str,
    /// What the kernel said.
    #[source]
    pub io_error: io::Error,
}

impl SyscallError {
    pub(crate) fn last(call: &'static str) -> SyscallError {
        SyscallError {
            call,
            io_error: io::Error::last_os_error(),
        }
    }

    /// The errno, if the error came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        self.io_error.raw_os_error()
    }
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; the clocks used here always exist on Linux,
    // so the call cannot fail and a zero time would only be reported if it did.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of the kernel's event timestamps.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// `CLOCK_BOOTTIME` in nanoseconds: the clock of `/proc/<pid>/stat` start times.
pub fn boottime_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME)
}

/// The calling thread's id.
pub fn gettid() -> u32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() as u32 }
}

/// The calling process's id.
pub fn getpid() -> u32 {
    std::process::id()
}

/// Renames the calling thread (`prctl(PR_SET_NAME)`). The kernel reports the change
/// as a comm event, which the sensor uses as a marker in its own event stream.
pub fn set_thread_name(name: &str) -> Result<(), SyscallError> {
    let mut buf = [0u8; 16];
    for (d, s) in buf.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    // SAFETY: buf is NUL-terminated (at most 15 bytes copied into 16 zeroed bytes).
    let rc = unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr() as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        return Err(SyscallError::last("prctl(PR_SET_NAME)"));
    }
    Ok(())
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of `/proc` start times.
pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no memory arguments.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as u64 } else { 100 }
}

/// `PROC_NET_INIT_INO` in `<linux/proc_ns.h>`: the inode number the kernel gives the
/// initial network namespace, fixed since Linux 3.8.
const PROC_NET_INIT_INO: u64 = 0xEFFF_FFF9;

/// Whether this process is in the initial network namespace, where the process
/// connector lives. `None` when it cannot be told (`/proc/self/ns/net` unreadable).
pub fn in_initial_net_namespace(proc_root: &std::path::Path) -> Option<bool> {
    let mine = std::fs::metadata(proc_root.join("self/ns/net")).ok()?;
    // Comparing with /proc/1/ns/net would need ptrace access to PID 1, which
    // sandboxes deny even to root; the initial namespace's inode number is fixed.
    Some(mine.ino() == PROC_NET_INIT_INO)
}

static STOP_REQUESTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP_REQUESTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Makes SIGINT and SIGTERM set a flag instead of killing the process, so a command
/// can finish cleanly (print its counts). Returns the flag.
pub fn install_stop_signals() -> Result<&'static std::sync::atomic::AtomicBool, SyscallError> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is plain data; the handler only stores to an atomic.
        let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
        act.sa_sigaction = on_stop_signal as *const () as usize;
        // SAFETY: act.sa_mask is a valid sigset_t to initialize.
        unsafe { libc::sigemptyset(&mut act.sa_mask) };
        // SAFETY: valid signal number and sigaction pointer.
        if unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) } != 0 {
            return Err(SyscallError::last("sigaction"));
        }
    }
    Ok(&STOP_REQUESTED)
}
