//! Bytes from the process connector to typed messages. Pure: no system calls, no
//! allocation, no panics on any input; unit tests and the fuzzer feed it bytes.
//!
//! One datagram from a `NETLINK_CONNECTOR` socket holds one or more netlink messages,
//! each `nlmsghdr` (16 bytes) + `cn_msg` (20 bytes) + `proc_event` (16-byte header and
//! a union whose size depends on the kernel version, 24 bytes today). The layouts are
//! those of `<linux/netlink.h>`, `<linux/connector.h>` and `<linux/cn_proc.h>`, all
//! little-endian on the machines aether runs on (native endianness, in fact, which is
//! what `from_ne_bytes` reads).

use std::fmt;

/// `CN_IDX_PROC` and `CN_VAL_PROC`: the process connector's id.
pub const CN_IDX_PROC: u32 = 1;
/// See [`CN_IDX_PROC`].
pub const CN_VAL_PROC: u32 = 1;

const NLMSG_HDRLEN: usize = 16;
const CN_MSG_LEN: usize = 20;
const PROC_EVENT_HDR: usize = 16;

const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;

/// `enum proc_cn_event` values (`what`).
pub mod what {
    /// Acknowledgement of a listen/ignore request.
    pub const NONE: u32 = 0;
    /// fork/clone.
    pub const FORK: u32 = 0x1;
    /// execve.
    pub const EXEC: u32 = 0x2;
    /// uid change.
    pub const UID: u32 = 0x4;
    /// gid change.
    pub const GID: u32 = 0x40;
    /// setsid.
    pub const SID: u32 = 0x80;
    /// ptrace attach/detach.
    pub const PTRACE: u32 = 0x100;
    /// comm change.
    pub const COMM: u32 = 0x200;
    /// core dump.
    pub const COREDUMP: u32 = 0x4000_0000;
    /// exit.
    pub const EXIT: u32 = 0x8000_0000;
}

/// One connector message: the envelope fields aether needs and the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// `cn_msg.seq`: the per-CPU sequence number the kernel assigned.
    pub seq: u32,
    /// `cn_msg.ack`: 0 for events; the request's ack + 1 for acknowledgements.
    pub ack: u32,
    /// The CPU that sent it.
    pub cpu: u32,
    /// Kernel `CLOCK_MONOTONIC` time of the event, in nanoseconds.
    pub timestamp_ns: u64,
    /// The event itself.
    pub body: Body,
}

/// The event in a [`Message`]. Field names follow `<linux/cn_proc.h>`: `pid` is a
/// thread id, `tgid` a process id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Body {
    /// Answer to a listen or ignore request; `err` is 0 or a positive errno.
    Ack {
        err: u32,
    },
    Fork {
        parent_pid: u32,
        parent_tgid: u32,
        child_pid: u32,
        child_tgid: u32,
    },
    Exec {
        pid: u32,
        tgid: u32,
    },
    Uid {
        pid: u32,
        tgid: u32,
        ruid: u32,
        euid: u32,
    },
    Gid {
        pid: u32,
        tgid: u32,
        rgid: u32,
        egid: u32,
    },
    Sid {
        pid: u32,
        tgid: u32,
    },
    Ptrace {
        pid: u32,
        tgid: u32,
        tracer_pid: u32,
        tracer_tgid: u32,
    },
    Comm {
        pid: u32,
        tgid: u32,
        comm: [u8; 16],
    },
    Coredump {
        pid: u32,
        tgid: u32,
        parent_pid: u32,
        parent_tgid: u32,
    },
    /// `parent` is absent on kernels older than 4.18, whose exit event is shorter.
    Exit {
        pid: u32,
        tgid: u32,
        exit_code: u32,
        exit_signal: u32,
        parent: Option<(u32, u32)>,
    },
    /// An event type this decoder does not know (a newer kernel).
    Unknown {
        what: u32,
    },
}

/// Why bytes could not be decoded. Each names what and where (byte offset in the
/// datagram).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the structure at `offset` needs.
    Truncated {
        /// Which structure.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// Bytes it needs.
        need: usize,
        /// Bytes there are.
        have: usize,
    },
    /// A netlink header whose length is impossible.
    BadLength {
        /// Where the header starts.
        offset: usize,
        /// Its `nlmsg_len`.
        len: u32,
    },
    /// A netlink error message (`NLMSG_ERROR`) with this errno.
    NetlinkError {
        /// Where the message starts.
        offset: usize,
        /// The (positive) errno.
        errno: i32,
    },
    /// `NLMSG_OVERRUN`: the kernel says data was lost.
    Overrun {
        /// Where the message starts.
        offset: usize,
    },
    /// A netlink message type the connector never sends.
    UnexpectedType {
        /// Where the message starts.
        offset: usize,
        /// Its `nlmsg_type`.
        kind: u16,
    },
    /// A connector message from another connector than the process connector.
    NotProcConnector {
        /// Where the `cn_msg` starts.
        offset: usize,
        /// Its `id.idx`.
        idx: u32,
        /// Its `id.val`.
        val: u32,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated {
                what,
                offset,
                need,
                have,
            } => {
                write!(
                    f,
                    "truncated {what} at byte {offset}: needs {need} bytes, has {have}"
                )
            }
            DecodeError::BadLength { offset, len } => {
                write!(
                    f,
                    "netlink header at byte {offset} has impossible length {len}"
                )
            }
            DecodeError::NetlinkError { offset, errno } => {
                write!(f, "netlink error message at byte {offset}: errno {errno}")
            }
            DecodeError::Overrun { offset } => {
                write!(f, "netlink overrun message at byte {offset}")
            }
            DecodeError::UnexpectedType { offset, kind } => {
                write!(f, "unexpected netlink message type {kind} at byte {offset}")
            }
            DecodeError::NotProcConnector { offset, idx, val } => write!(
                f,
                "connector message at byte {offset} is for connector {idx}:{val}, not the process connector"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_ne_bytes(a))
}

/// Iterates over the netlink messages of one datagram. After an error about the
/// framing itself (truncated or bad header) it stops, since nothing after can be
/// trusted to start where it seems; an error about one message's content is
/// reported and decoding goes on with the next message.
pub fn decode_datagram(buf: &[u8]) -> Datagram<'_> {
    Datagram {
        buf,
        offset: 0,
        done: false,
    }
}

/// Iterator returned by [`decode_datagram`].
pub struct Datagram<'a> {
    buf: &'a [u8],
    offset: usize,
    done: bool,
}

impl Iterator for Datagram<'_> {
    type Item = Result<Message, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done || self.offset >= self.buf.len() {
                return None;
            }
            let at = self.offset;
            let rest = self.buf.get(at..).unwrap_or(&[]);
            if rest.len() < NLMSG_HDRLEN {
                self.done = true;
                return Some(Err(DecodeError::Truncated {
                    what: "nlmsghdr",
                    offset: at,
                    need: NLMSG_HDRLEN,
                    have: rest.len(),
                }));
            }
            let len = u32_at(rest, 0).unwrap_or(0);
            let kind = u16_at(rest, 4).unwrap_or(0);
            if (len as usize) < NLMSG_HDRLEN {
                self.done = true;
                return Some(Err(DecodeError::BadLength { offset: at, len }));
            }
            if len as usize > rest.len() {
                self.done = true;
                return Some(Err(DecodeError::Truncated {
                    what: "netlink message",
                    offset: at,
                    need: len as usize,
                    have: rest.len(),
                }));
            }
            // NLMSG_ALIGN: messages start on 4-byte boundaries.
            let aligned = (len as usize).saturating_add(3) & !3;
            self.offset = at.saturating_add(aligned);
            let payload = rest.get(NLMSG_HDRLEN..len as usize).unwrap_or(&[]);
            let payload_at = at + NLMSG_HDRLEN;
            match kind {
                NLMSG_NOOP => continue,
                NLMSG_ERROR => {
                    let errno = u32_at(payload, 0)
                        .map(|e| (e as i32).wrapping_neg())
                        .unwrap_or(0);
                    if errno == 0 {
                        // An ack of a request we made with NLM_F_ACK; not an error.
                        continue;
                    }
                    return Some(Err(DecodeError::NetlinkError { offset: at, errno }));
                }
                NLMSG_OVERRUN => return Some(Err(DecodeError::Overrun { offset: at })),
                NLMSG_DONE => return Some(decode_cn_msg(payload, payload_at)),
                other => {
                    return Some(Err(DecodeError::UnexpectedType {
                        offset: at,
                        kind: other,
                    }));
                }
            }
        }
    }
}

/// Decodes one `cn_msg` carrying a `proc_event`. `base` is its offset in the
/// datagram, for error messages.
pub fn decode_cn_msg(b: &[u8], base: usize) -> Result<Message, DecodeError> {
    let trunc =
        |what: &'static str, offset: usize, need: usize, have: usize| DecodeError::Truncated {
            what,
            offset,
            need,
            have,
        };
    if b.len() < CN_MSG_LEN {
        return Err(trunc("cn_msg", base, CN_MSG_LEN, b.len()));
    }
    let idx = u32_at(b, 0).unwrap_or(0);
    let val = u32_at(b, 4).unwrap_or(0);
    let seq = u32_at(b, 8).unwrap_or(0);
    let ack = u32_at(b, 12).unwrap_or(0);
    let data_len = u16_at(b, 16).unwrap_or(0) as usize;
    if idx != CN_IDX_PROC || val != CN_VAL_PROC {
        return Err(DecodeError::NotProcConnector {
            offset: base,
            idx,
            val,
        });
    }
    let data_at = base + CN_MSG_LEN;
    let have = b.len() - CN_MSG_LEN;
    if data_len > have {
        return Err(trunc("cn_msg data", data_at, data_len, have));
    }
    let ev = b.get(CN_MSG_LEN..CN_MSG_LEN + data_len).unwrap_or(&[]);
    if ev.len() < PROC_EVENT_HDR {
        return Err(trunc("proc_event", data_at, PROC_EVENT_HDR, ev.len()));
    }
    let what_v = u32_at(ev, 0).unwrap_or(0);
    let cpu = u32_at(ev, 4).unwrap_or(0);
    let timestamp_ns = u64_at(ev, 8).unwrap_or(0);
    let d = ev.get(PROC_EVENT_HDR..).unwrap_or(&[]);
    let d_at = data_at + PROC_EVENT_HDR;
    let need = |n: usize, name: &'static str| -> Result<(), DecodeError> {
        if d.len() < n {
            Err(trunc(name, d_at, n, d.len()))
        } else {
            Ok(())
        }
    };
    let w = |i: usize| u32_at(d, i * 4).unwrap_or(0);
    let body = match what_v {
        what::NONE => {
            need(4, "ack event")?;
            Body::Ack { err: w(0) }
        }
        what::FORK => {
            need(16, "fork event")?;
            Body::Fork {
                parent_pid: w(0),
                parent_tgid: w(1),
                child_pid: w(2),
                child_tgid: w(3),
            }
        }
        what::EXEC => {
            need(8, "exec event")?;
            Body::Exec {
                pid: w(0),
                tgid: w(1),
            }
        }
        what::UID => {
            need(16, "uid event")?;
            Body::Uid {
                pid: w(0),
                tgid: w(1),
                ruid: w(2),
                euid: w(3),
            }
        }
        what::GID => {
            need(16, "gid event")?;
            Body::Gid {
                pid: w(0),
                tgid: w(1),
                rgid: w(2),
                egid: w(3),
            }
        }
        what::SID => {
            need(8, "sid event")?;
            Body::Sid {
                pid: w(0),
                tgid: w(1),
            }
        }
        what::PTRACE => {
            need(16, "ptrace event")?;
            Body::Ptrace {
                pid: w(0),
                tgid: w(1),
                tracer_pid: w(2),
                tracer_tgid: w(3),
            }
        }
        what::COMM => {
            need(24, "comm event")?;
            let mut comm = [0u8; 16];
            if let Some(s) = d.get(8..24) {
                comm.copy_from_slice(s);
            }
            Body::Comm {
                pid: w(0),
                tgid: w(1),
                comm,
            }
        }
        what::COREDUMP => {
            // parent fields were added with the exit ones (4.18); 8 bytes is the minimum.
            need(8, "coredump event")?;
            Body::Coredump {
                pid: w(0),
                tgid: w(1),
                parent_pid: w(2),
                parent_tgid: w(3),
            }
        }
        what::EXIT => {
            need(16, "exit event")?;
            let parent = (d.len() >= 24).then(|| (w(4), w(5)));
            Body::Exit {
                pid: w(0),
                tgid: w(1),
                exit_code: w(2),
                exit_signal: w(3),
                parent,
            }
        }
        other => Body::Unknown { what: other },
    };
    Ok(Message {
        seq,
        ack,
        cpu,
        timestamp_ns,
        body,
    })
}

/// Builds the bytes of one connector datagram: for tests, the fuzzer's seed corpus,
/// and the listen request (whose payload is an op rather than an event).
pub fn encode(seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let total = NLMSG_HDRLEN + CN_MSG_LEN + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_ne_bytes());
    out.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    out.extend_from_slice(&0u16.to_ne_bytes()); // flags
    out.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_seq
    out.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
    out.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    out.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&ack.to_ne_bytes());
    out.extend_from_slice(&(payload.len() as u16).to_ne_bytes());
    out.extend_from_slice(&0u16.to_ne_bytes());
    out.extend_from_slice(payload);
    out
}

/// Builds a `proc_event` payload: header and event words (for tests and the fuzzer's
/// seeds). `words` are the union's u32 fields in order.
pub fn encode_event(what_v: u32, cpu: u32, timestamp_ns: u64, words: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    out.extend_from_slice(&what_v.to_ne_bytes());
    out.extend_from_slice(&cpu.to_ne_bytes());
    out.extend_from_slice(&timestamp_ns.to_ne_bytes());
    for w in words {
        out.extend_from_slice(&w.to_ne_bytes());
    }
    // The kernel always sends the whole union (24 bytes today).
    while out.len() < PROC_EVENT_HDR + 24 {
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Result<Message, DecodeError> {
        let mut it = decode_datagram(bytes);
        let first = it.next().expect("one message");
        assert!(it.next().is_none(), "exactly one message");
        first
    }

    #[test]
    fn fork_decodes() {
        let b = encode(7, 0, &encode_event(what::FORK, 1, 123, &[10, 10, 11, 11]));
        let m = one(&b).unwrap();
        assert_eq!(m.seq, 7);
        assert_eq!(m.cpu, 1);
        assert_eq!(m.timestamp_ns, 123);
        assert_eq!(
            m.body,
            Body::Fork {
                parent_pid: 10,
                parent_tgid: 10,
                child_pid: 11,
                child_tgid: 11
            }
        );
    }

    #[test]
    fn every_kind_decodes() {
        let mut comm_words = vec![5, 5];
        let name = *b"worker\0\0\0\0\0\0\0\0\0\0";
        for c in name.chunks(4) {
            comm_words.push(u32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
        }
        let cases: Vec<(u32, Vec<u32>, Body)> = vec![
            (what::NONE, vec![1], Body::Ack { err: 1 }),
            (what::EXEC, vec![5, 5], Body::Exec { pid: 5, tgid: 5 }),
            (
                what::UID,
                vec![5, 5, 1000, 0],
                Body::Uid {
                    pid: 5,
                    tgid: 5,
                    ruid: 1000,
                    euid: 0,
                },
            ),
            (
                what::GID,
                vec![5, 5, 100, 100],
                Body::Gid {
                    pid: 5,
                    tgid: 5,
                    rgid: 100,
                    egid: 100,
                },
            ),
            (what::SID, vec![5, 5], Body::Sid { pid: 5, tgid: 5 }),
            (
                what::PTRACE,
                vec![5, 5, 9, 9],
                Body::Ptrace {
                    pid: 5,
                    tgid: 5,
                    tracer_pid: 9,
                    tracer_tgid: 9,
                },
            ),
            (
                what::COMM,
                comm_words,
                Body::Comm {
                    pid: 5,
                    tgid: 5,
                    comm: name,
                },
            ),
            (
                what::COREDUMP,
                vec![5, 5, 1, 1],
                Body::Coredump {
                    pid: 5,
                    tgid: 5,
                    parent_pid: 1,
                    parent_tgid: 1,
                },
            ),
            (
                what::EXIT,
                vec![6, 5, 9, 17, 1, 1],
                Body::Exit {
                    pid: 6,
                    tgid: 5,
                    exit_code: 9,
                    exit_signal: 17,
                    parent: Some((1, 1)),
                },
            ),
            (0x1234, vec![], Body::Unknown { what: 0x1234 }),
        ];
        for (w, words, body) in cases {
            let m = one(&encode(0, 0, &encode_event(w, 0, 0, &words))).unwrap();
            assert_eq!(m.body, body);
        }
    }

    #[test]
    fn old_short_exit_has_no_parent() {
        // A pre-4.18 kernel: the union is 16 bytes and exit has no parent fields.
        let mut ev = encode_event(what::EXIT, 0, 0, &[5, 5, 0, 17]);
        ev.truncate(PROC_EVENT_HDR + 16);
        let m = one(&encode(0, 0, &ev)).unwrap();
        assert_eq!(
            m.body,
            Body::Exit {
                pid: 5,
                tgid: 5,
                exit_code: 0,
                exit_signal: 17,
                parent: None
            }
        );
    }

    #[test]
    fn two_messages_in_one_datagram() {
        let mut b = encode(1, 0, &encode_event(what::EXEC, 0, 0, &[3, 3]));
        b.extend(encode(2, 0, &encode_event(what::EXEC, 0, 0, &[4, 4])));
        let all: Vec<_> = decode_datagram(&b).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[1].as_ref().unwrap().body,
            Body::Exec { pid: 4, tgid: 4 }
        );
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let b = encode(1, 0, &encode_event(what::EXIT, 0, 0, &[5, 5, 0, 17, 1, 1]));
        for cut in 0..b.len() {
            let got: Vec<_> = decode_datagram(&b[..cut]).collect();
            if cut == 0 {
                assert!(got.is_empty());
                continue;
            }
            assert_eq!(got.len(), 1, "cut at {cut}");
            assert!(got[0].is_err(), "cut at {cut} gave {:?}", got[0]);
        }
    }

    #[test]
    fn a_short_event_inside_a_whole_frame_is_an_error() {
        // nlmsghdr and cn_msg lengths agree, but the exec event is 4 bytes short.
        let ev = &encode_event(what::EXEC, 0, 0, &[1, 1])[..PROC_EVENT_HDR + 4];
        let err = one(&encode(0, 0, ev)).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                what: "exec event",
                offset: 52,
                need: 8,
                have: 4
            }
        );
        assert!(err.to_string().contains("exec event"));
    }

    #[test]
    fn cn_len_beyond_the_frame_is_an_error() {
        let mut b = encode(0, 0, &encode_event(what::EXEC, 0, 0, &[1, 1]));
        b[16 + 16] = 0xff; // cn_msg.len low byte
        b[16 + 17] = 0x00;
        assert!(matches!(
            one(&b),
            Err(DecodeError::Truncated {
                what: "cn_msg data",
                ..
            })
        ));
    }

    #[test]
    fn other_connectors_and_netlink_errors_are_reported() {
        let mut b = encode(0, 0, &encode_event(what::EXEC, 0, 0, &[1, 1]));
        b[16] = 9;
        assert!(matches!(
            one(&b),
            Err(DecodeError::NotProcConnector { idx: 9, .. })
        ));

        let mut e = vec![0u8; 20];
        e[0..4].copy_from_slice(&20u32.to_ne_bytes());
        e[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        e[16..20].copy_from_slice(&(-105i32).to_ne_bytes());
        assert_eq!(
            one(&e),
            Err(DecodeError::NetlinkError {
                offset: 0,
                errno: 105
            })
        );

        let mut o = vec![0u8; 16];
        o[0..4].copy_from_slice(&16u32.to_ne_bytes());
        o[4..6].copy_from_slice(&NLMSG_OVERRUN.to_ne_bytes());
        assert_eq!(one(&o), Err(DecodeError::Overrun { offset: 0 }));
    }

    #[test]
    fn bad_header_lengths_stop_the_datagram() {
        let mut b = vec![0u8; 40];
        b[0..4].copy_from_slice(&3u32.to_ne_bytes());
        let got: Vec<_> = decode_datagram(&b).collect();
        assert_eq!(got, vec![Err(DecodeError::BadLength { offset: 0, len: 3 })]);

        b[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        let got: Vec<_> = decode_datagram(&b).collect();
        assert!(matches!(
            got.as_slice(),
            [Err(DecodeError::Truncated {
                what: "netlink message",
                ..
            })]
        ));
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic pseudo-random walk over many lengths and contents.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..600usize {
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(x as u8);
            }
            // Sometimes make the header plausible so decoding goes deeper.
            if len >= 16 && x.is_multiple_of(2) {
                buf[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
                buf[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
                if len >= 24 && x.is_multiple_of(4) {
                    buf[16..20].copy_from_slice(&1u32.to_ne_bytes());
                    buf[20..24].copy_from_slice(&1u32.to_ne_bytes());
                }
            }
            for r in decode_datagram(&buf).take(1000) {
                if let Err(e) = r {
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}
