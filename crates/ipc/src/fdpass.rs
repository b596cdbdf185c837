//! Passing open descriptors over a Unix stream socket (`SCM_RIGHTS`), and
//! checking what was passed.
//!
//! The kernel attaches passed descriptors to the first byte of the `sendmsg`
//! that carried them, and a `recvmsg` that meets such bytes stops right after
//! them: the descriptors of one read belong to the bytes at its end. The
//! server uses that to pair each descriptor with the frame it came with
//! ([`Passed`]).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Descriptors one `recvmsg` accepts at most; a message carrying more is a
/// protocol error (the kernel closes those that do not fit).
const MAX_FDS_PER_READ: usize = 4;

/// What one read brought besides bytes.
#[derive(Debug, Default)]
pub(crate) struct Received {
    /// Descriptors, now owned by this process (close-on-exec).
    pub fds: Vec<OwnedFd>,
    /// The control data was cut short: descriptors were lost.
    pub truncated: bool,
}

/// `recvmsg` into the spare capacity of `buf` (appending what was read), with
/// room for a few passed descriptors. Returns the bytes read (0: end of stream).
pub(crate) fn recv_with_fds(
    fd: RawFd,
    buf: &mut Vec<u8>,
    received: &mut Received,
) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let mut iov = libc::iovec {
        iov_base: spare.as_mut_ptr().cast(),
        iov_len: spare.len(),
    };
    // u64 words keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 8];
    const _: () = assert!(
        std::mem::size_of::<[u64; 8]>() >= 16 + MAX_FDS_PER_READ * std::mem::size_of::<i32>()
    );
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg points at live buffers of the sizes it declares; the iovec
    // covers only the vector's spare capacity.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel initialized the first n bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        received.truncated = true;
    }
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled,
    // within msg_controllen; each SCM_RIGHTS payload is an array of ints, each
    // a descriptor now owned by this process.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let header = data as usize - c as usize;
                let len = ((*c).cmsg_len as usize).saturating_sub(header);
                for i in 0..len / std::mem::size_of::<libc::c_int>() {
                    let raw = std::ptr::read_unaligned((data as *const libc::c_int).add(i));
                    received.fds.push(OwnedFd::from_raw_fd(raw));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(n)
}

/// Sends `data` with `passed` attached to its first byte, in one `sendmsg`
/// (without `SIGPIPE`: a closed peer is an `EPIPE` error). Returns how many
/// bytes went; the caller sends the rest without the descriptor.
pub(crate) fn send_with_fd(fd: RawFd, data: &[u8], passed: BorrowedFd<'_>) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    let mut control = [0u64; 4];
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE/CMSG_LEN are arithmetic.
    let (space, len) = unsafe {
        (
            libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32),
            libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32),
        )
    };
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer (32 bytes) holds one cmsghdr and one int;
    // CMSG_FIRSTHDR points into it; the iovec only reads `data`.
    let n = unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = len as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>(), passed.as_raw_fd());
        libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL)
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Why a passed descriptor is not scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unfit {
    /// Not a regular file.
    NotRegular,
    /// Not open for reading (write-only, or `O_PATH`).
    NotReadable,
}

/// Checks that a passed descriptor is a regular file open for reading, and
/// gives it back as a `File`.
///
/// `O_PATH` descriptors matter: one can be opened on a file its opener may
/// not read, and reading it through the server would defeat the point of
/// passing descriptors.
pub(crate) fn readable_regular_file(fd: OwnedFd) -> Result<File, (Unfit, String)> {
    // SAFETY: F_GETFL on a descriptor this process owns.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        let e = io::Error::last_os_error();
        return Err((Unfit::NotReadable, format!("descriptor flags: {e}")));
    }
    if flags & libc::O_PATH != 0 {
        return Err((Unfit::NotReadable, "an O_PATH descriptor".into()));
    }
    if flags & libc::O_ACCMODE == libc::O_WRONLY {
        return Err((Unfit::NotReadable, "not open for reading".into()));
    }
    let file = File::from(fd);
    match file.metadata() {
        Ok(m) if m.is_file() => Ok(file),
        Ok(m) => {
            let ft = m.file_type();
            use std::os::unix::fs::FileTypeExt;
            let what = if ft.is_dir() {
                "a directory"
            } else if ft.is_fifo() {
                "a FIFO"
            } else if ft.is_socket() {
                "a socket"
            } else if ft.is_block_device() || ft.is_char_device() {
                "a device"
            } else {
                "not a regular file"
            };
            Err((Unfit::NotRegular, format!("{what}, not a regular file")))
        }
        Err(e) => Err((Unfit::NotRegular, format!("fstat: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_descriptor_travels_with_the_first_byte_and_ends_the_read() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"content").unwrap();
        (&a).write_all(b"before").unwrap();
        assert_eq!(
            send_with_fd(a.as_raw_fd(), b"frame", file.as_fd()).unwrap(),
            5
        );
        (&a).write_all(b"after").unwrap();
        let mut buf = Vec::with_capacity(64);
        let mut got = Received::default();
        // The read ends with the bytes that carried the descriptor.
        let n = recv_with_fds(b.as_raw_fd(), &mut buf, &mut got).unwrap();
        assert_eq!(&buf[..n], b"beforeframe");
        assert_eq!(got.fds.len(), 1);
        assert!(!got.truncated);
        let n = recv_with_fds(b.as_raw_fd(), &mut buf, &mut got).unwrap();
        assert_eq!(n, 5);
        assert_eq!(buf, b"beforeframeafter");
        assert_eq!(got.fds.len(), 1);
        let passed = readable_regular_file(got.fds.pop().unwrap()).unwrap();
        assert_eq!(passed.metadata().unwrap().len(), 7);
    }

    #[test]
    fn unfit_descriptors_are_named() {
        let (a, _b) = UnixStream::pair().unwrap();
        let e = readable_regular_file(OwnedFd::from(a)).unwrap_err();
        assert_eq!(e.0, Unfit::NotRegular);
        assert!(e.1.contains("socket"), "{e:?}");
        let dir = tempfile::tempdir().unwrap();
        let d = File::open(dir.path()).unwrap();
        let e = readable_regular_file(OwnedFd::from(d)).unwrap_err();
        assert!(e.1.contains("directory"), "{e:?}");
        let w = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("w"))
            .unwrap();
        let e = readable_regular_file(OwnedFd::from(w)).unwrap_err();
        assert_eq!(e.0, Unfit::NotReadable);
        use std::os::unix::fs::OpenOptionsExt;
        let p = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(dir.path().join("w"))
            .unwrap();
        let e = readable_regular_file(OwnedFd::from(p)).unwrap_err();
        assert_eq!(e, (Unfit::NotReadable, "an O_PATH descriptor".into()));
    }
}
