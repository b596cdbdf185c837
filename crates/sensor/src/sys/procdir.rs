//! `/proc/<pid>` read through one directory descriptor.
//!
//! A descriptor on `/proc/<pid>` is tied to that process, not to the number: once the
//! process is reaped, lookups under it fail even if the PID has been handed to a new
//! process. Reading every file through `openat` on it therefore reads one process or
//! nothing, never a mix of two.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// An open `/proc/<pid>` directory.
pub struct ProcDir {
    fd: OwnedFd,
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

impl ProcDir {
    /// Opens `<root>/<pid>`.
    pub fn open(root: &Path, pid: u32) -> io::Result<ProcDir> {
        let path = root.join(pid.to_string());
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: c is a valid NUL-terminated path.
        let raw = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh descriptor that nothing else owns.
        Ok(ProcDir {
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
        })
    }

    /// Reads the whole file `name` (at most `limit` bytes) into `out`, replacing its
    /// contents.
    pub fn read(&self, name: &str, out: &mut Vec<u8>, limit: usize) -> io::Result<()> {
        let c = cstr(name)?;
        // SAFETY: valid dirfd and NUL-terminated relative path.
        let raw = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh descriptor that nothing else owns.
        let file = unsafe { OwnedFd::from_raw_fd(raw) };
        out.clear();
        let mut chunk = [0u8; 4096];
        while out.len() < limit {
            let want = chunk.len().min(limit - out.len());
            // SAFETY: chunk is valid for `want` bytes.
            let n = unsafe {
                libc::read(
                    file.as_raw_fd(),
                    chunk.as_mut_ptr() as *mut libc::c_void,
                    want,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                break;
            }
            out.extend_from_slice(chunk.get(..n as usize).unwrap_or(&[]));
        }
        Ok(())
    }

    /// Reads the symbolic link `name` (`exe`, `cwd`).
    pub fn readlink(&self, name: &str) -> io::Result<Vec<u8>> {
        let c = cstr(name)?;
        let mut buf = vec![0u8; 4096];
        // SAFETY: valid dirfd, NUL-terminated path, buffer valid for its length.
        let n = unsafe {
            libc::readlinkat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                buf.as_mut_ptr() as *mut libc::c_char,
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(n as usize);
        Ok(buf)
    }

    /// The thread ids in `task/`.
    pub fn threads(&self) -> io::Result<Vec<u32>> {
        let c = cstr("task")?;
        // SAFETY: valid dirfd and NUL-terminated relative path.
        let raw = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh directory descriptor; fdopendir takes ownership.
        let dir = unsafe { libc::fdopendir(raw) };
        if dir.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so raw is still ours to close.
            unsafe { libc::close(raw) };
            return Err(e);
        }
        let mut out = Vec::new();
        loop {
            // SAFETY: dir is a valid DIR*.
            let ent = unsafe { libc::readdir(dir) };
            if ent.is_null() {
                break;
            }
            // SAFETY: d_name is NUL-terminated inside the dirent readdir returned.
            let name = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) };
            if let Some(tid) = name.to_str().ok().and_then(|s| s.parse::<u32>().ok()) {
                out.push(tid);
            }
        }
        // SAFETY: dir is valid and closed once.
        unsafe { libc::closedir(dir) };
        Ok(out)
    }
}
