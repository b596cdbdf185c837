//! The `NETLINK_CONNECTOR` socket, raw: no wrapper sets `NETLINK_NO_ENOBUFS`, so the
//! kernel's overrun report reaches us.

use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::SyscallError;
use crate::decode::{CN_IDX_PROC, encode};

/// `PROC_CN_MCAST_LISTEN`.
pub const PROC_CN_MCAST_LISTEN: u32 = 1;
/// `PROC_CN_MCAST_IGNORE`.
pub const PROC_CN_MCAST_IGNORE: u32 = 2;

/// A process-connector socket bound to the `CN_IDX_PROC` multicast group.
pub struct ConnectorSocket {
    fd: OwnedFd,
}

fn setsockopt_int(
    fd: i32,
    level: i32,
    name: i32,
    value: i32,
    call: &'static str,
) -> Result<(), SyscallError> {
    // SAFETY: pointer and length describe `value`, which outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &value as *const i32 as *const libc::c_void,
            mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(SyscallError::last(call));
    }
    Ok(())
}

impl ConnectorSocket {
    /// Creates the socket and binds it to the process connector's group.
    pub fn open() -> Result<ConnectorSocket, SyscallError> {
        // SAFETY: plain socket(2) call.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_CONNECTOR,
            )
        };
        if raw < 0 {
            return Err(SyscallError::last("socket(AF_NETLINK, NETLINK_CONNECTOR)"));
        }
        // SAFETY: raw is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_nl is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_pid = 0; // let the kernel pick our port id
        addr.nl_groups = CN_IDX_PROC;
        // SAFETY: pointer and length describe `addr`.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(SyscallError::last("bind(CN_IDX_PROC)"));
        }
        Ok(ConnectorSocket { fd })
    }

    /// Sets the receive buffer past `rmem_max` (`SO_RCVBUFFORCE`, needs
    /// `CAP_NET_ADMIN`). The kernel doubles the value for its bookkeeping.
    pub fn set_rcvbuf_force(&self, bytes: usize) -> Result<(), SyscallError> {
        let v = bytes.min(i32::MAX as usize / 2) as i32;
        setsockopt_int(
            self.fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            v,
            "setsockopt(SO_RCVBUFFORCE)",
        )
    }

    /// The receive buffer size the kernel actually uses.
    pub fn rcvbuf(&self) -> Result<usize, SyscallError> {
        let mut v: i32 = 0;
        let mut len = mem::size_of::<i32>() as libc::socklen_t;
        // SAFETY: pointer and length describe `v`.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &mut v as *mut i32 as *mut libc::c_void,
                &mut len,
            )
        };
        if rc != 0 {
            return Err(SyscallError::last("getsockopt(SO_RCVBUF)"));
        }
        Ok(v.max(0) as usize)
    }

    /// Makes receives return `EAGAIN` after `timeout` without data, so the reader
    /// can notice a stop request.
    pub fn set_recv_timeout(&self, timeout: Duration) -> Result<(), SyscallError> {
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: pointer and length describe `tv`.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(SyscallError::last("setsockopt(SO_RCVTIMEO)"));
        }
        Ok(())
    }

    /// Waits up to `timeout` for the socket to have something to receive (or an
    /// error, such as an overrun, to report). True if it has.
    pub fn wait_readable(&self, timeout: Duration) -> Result<bool, SyscallError> {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut p, 1, ms) };
        if rc < 0 {
            let e = SyscallError::last("poll");
            return if e.errno() == Some(libc::EINTR) {
                Ok(false)
            } else {
                Err(e)
            };
        }
        Ok(rc > 0)
    }

    /// Sends a listen or ignore request with the given ack tag; the kernel answers
    /// with an ack event whose `ack` is `tag + 1`.
    pub fn send_op(&self, op: u32, tag: u32) -> Result<(), SyscallError> {
        // The 4-byte form: accepted by every kernel, and PROC_EVENT_ALL on 6.6+.
        self.send_bytes(&encode(0, tag, &op.to_ne_bytes()))
    }

    /// Sends the 6.6+ form of the listen request, `struct proc_input { mcast_op,
    /// event_type }`, asking for only the events in the `event_type` mask. The
    /// sensor never does this (see [`crate::seq`]); tests use it to show what a
    /// filtered listener sees.
    pub fn send_listen_for(&self, event_type: u32, tag: u32) -> Result<(), SyscallError> {
        let mut payload = PROC_CN_MCAST_LISTEN.to_ne_bytes().to_vec();
        payload.extend_from_slice(&event_type.to_ne_bytes());
        self.send_bytes(&encode(0, tag, &payload))
    }

    fn send_bytes(&self, bytes: &[u8]) -> Result<(), SyscallError> {
        // SAFETY: sockaddr_nl is plain data; all-zero addresses the kernel.
        let mut to: libc::sockaddr_nl = unsafe { mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: buffer and address pointers/lengths are valid for the call.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                bytes.as_ptr() as *const libc::c_void,
                bytes.len(),
                0,
                &to as *const libc::sockaddr_nl as *const libc::sockaddr,
                mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(SyscallError::last("sendto(PROC_CN_MCAST_*)"));
        }
        Ok(())
    }

    /// Receives up to `batch.capacity()` datagrams, waiting for the first (up to the
    /// receive timeout). Returns how many arrived. `ENOBUFS` (kernel dropped messages)
    /// and `EAGAIN` (timeout) come back as errors for the caller to tell apart.
    pub fn recv_batch(&self, batch: &mut RecvBatch) -> Result<usize, SyscallError> {
        self.recv_batch_flags(batch, libc::MSG_WAITFORONE)
    }

    /// As [`recv_batch`](Self::recv_batch) but never waits: `EAGAIN` when the
    /// socket is empty.
    pub fn try_recv_batch(&self, batch: &mut RecvBatch) -> Result<usize, SyscallError> {
        self.recv_batch_flags(batch, libc::MSG_DONTWAIT)
    }

    fn recv_batch_flags(
        &self,
        batch: &mut RecvBatch,
        flags: libc::c_int,
    ) -> Result<usize, SyscallError> {
        let n = batch.bufs.len();
        batch.iov.clear();
        for buf in batch.bufs.iter_mut() {
            batch.iov.push(libc::iovec {
                iov_base: buf.as_mut_ptr() as *mut libc::c_void,
                iov_len: buf.len(),
            });
        }
        batch.hdrs.clear();
        for i in 0..n {
            // SAFETY: mmsghdr is plain data; all-zero is valid, then filled in.
            let mut h: libc::mmsghdr = unsafe { mem::zeroed() };
            h.msg_hdr.msg_name = &mut batch.names[i] as *mut libc::sockaddr_nl as *mut libc::c_void;
            h.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut batch.iov[i] as *mut libc::iovec;
            h.msg_hdr.msg_iovlen = 1;
            batch.hdrs.push(h);
        }
        // SAFETY: every pointer in hdrs points into `batch`, which is borrowed
        // mutably for the whole call; lengths match the buffers.
        let rc = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                batch.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            batch.filled = 0;
            return Err(SyscallError::last("recvmmsg"));
        }
        batch.filled = rc as usize;
        Ok(batch.filled)
    }
}

/// Buffers for one [`ConnectorSocket::recv_batch`].
pub struct RecvBatch {
    bufs: Vec<[u8; 1024]>,
    names: Vec<libc::sockaddr_nl>,
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    filled: usize,
}

// SAFETY: the raw pointers in `iov` and `hdrs` only ever point into this struct's own
// buffers and are rebuilt before each use; moving the batch to another thread is fine.
unsafe impl Send for RecvBatch {}

/// One received datagram.
pub struct Datagram<'a> {
    /// Its bytes.
    pub bytes: &'a [u8],
    /// The sender's netlink port id: 0 for the kernel.
    pub sender: u32,
    /// True when the datagram was longer than the buffer and was cut.
    pub truncated: bool,
}

impl RecvBatch {
    /// Buffers for `count` datagrams of up to 1 KiB (a connector message is 76 bytes).
    pub fn new(count: usize) -> RecvBatch {
        let count = count.max(1);
        RecvBatch {
            bufs: vec![[0u8; 1024]; count],
            // SAFETY: sockaddr_nl is plain data; all-zero is valid.
            names: (0..count).map(|_| unsafe { mem::zeroed() }).collect(),
            iov: Vec::with_capacity(count),
            hdrs: Vec::with_capacity(count),
            filled: 0,
        }
    }

    /// How many datagrams one receive can return.
    pub fn capacity(&self) -> usize {
        self.bufs.len()
    }

    /// The datagrams of the last receive.
    pub fn datagrams(&self) -> impl Iterator<Item = Datagram<'_>> {
        (0..self.filled).filter_map(move |i| {
            let h = self.hdrs.get(i)?;
            let buf = self.bufs.get(i)?;
            let len = (h.msg_len as usize).min(buf.len());
            let name = self.names.get(i)?;
            Some(Datagram {
                bytes: buf.get(..len)?,
                sender: name.nl_pid,
                truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            })
        })
    }
}
