//! A client connection, Unix or TCP; on Unix sockets every read also
//! collects descriptors passed with `SCM_RIGHTS` (for FILDES).

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpStream, UnixStream};

/// At most this many passed descriptors are kept waiting for a FILDES; more
/// are closed on arrival, so a client cannot exhaust the daemon's table.
const MAX_PENDING_FDS: usize = 8;

pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    /// Who is on the other end, for the journal: the kernel's credentials of a
    /// Unix peer, the address of a TCP one.
    pub fn describe(&self) -> String {
        match self {
            Stream::Unix(s) => match s.peer_cred() {
                Ok(c) => match c.pid() {
                    Some(pid) => format!("uid {} pid {pid}", c.uid()),
                    None => format!("uid {}", c.uid()),
                },
                Err(_) => "unix".into(),
            },
            Stream::Tcp(s) => match s.peer_addr() {
                Ok(a) => format!("tcp {a}"),
                Err(_) => "tcp".into(),
            },
        }
    }

    /// Reads what is available; descriptors received go to `fds`.
    pub async fn read(&mut self, buf: &mut [u8], fds: &mut VecDeque<OwnedFd>) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => {
                let raw = s.as_raw_fd();
                loop {
                    s.readable().await?;
                    match s.try_io(Interest::READABLE, || recv_with_fds(raw, buf, fds)) {
                        Ok(n) => return Ok(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
            Stream::Tcp(s) => s.read(buf).await,
        }
    }

    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.write_all(data).await,
            Stream::Tcp(s) => s.write_all(data).await,
        }
    }
}

/// `recvmsg` with room for passed descriptors, which are made close-on-exec.
fn recv_with_fds(fd: RawFd, buf: &mut [u8], fds: &mut VecDeque<OwnedFd>) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // u64 words keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 64];
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg points at live buffers of the sizes it declares.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled,
    // within msg_controllen; each SCM_RIGHTS payload is an array of ints,
    // each a descriptor now owned by this process.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let header = data as usize - c as usize;
                let len = ((*c).cmsg_len as usize).saturating_sub(header);
                let count = len / std::mem::size_of::<libc::c_int>();
                for i in 0..count {
                    let raw = std::ptr::read_unaligned((data as *const libc::c_int).add(i));
                    let owned = OwnedFd::from_raw_fd(raw);
                    if fds.len() < MAX_PENDING_FDS {
                        fds.push_back(owned);
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(n as usize)
}
