//! The UDP transport, for processes that speak datagrams: every datagram is
//! authenticated, numbered and checked, and losses are refilled on request.
//!
//! ```text
//! offset  size  field
//! 0       2     magic "AU" (0x41 0x55)
//! 2       1     protocol version (1)
//! 3       1     type: 1 record, 2 nack, 3 heartbeat
//! 4       4     stream id, big-endian u32 (random per sender start)
//! 8       8     sequence number, big-endian u64 (the record's; a nack's own counter;
//!               for a heartbeat, the highest record number sent so far)
//! 16      n     payload: a Record message (type 1), a Nack message (type 2), nothing
//!               (type 3)
//! 16+n    32    HMAC-SHA256 under the install key of bytes 0 .. 16+n
//! ```

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use prost::Message;
use sha2::Sha256;
use tokio::net::UdpSocket;

use crate::msg::{Nack, Record};
use crate::server::Replay;

/// The two magic bytes that open every datagram.
pub const UDP_MAGIC: [u8; 2] = *b"AU";
/// The datagram format version.
pub const UDP_VERSION: u8 = 1;
/// Header length.
pub const UDP_HEADER_LEN: usize = 16;
/// MAC length.
pub const MAC_LEN: usize = 32;
/// The default largest datagram accepted, in bytes.
pub const DEFAULT_MAX_DATAGRAM: usize = 8192;
/// At most this many missing sequence numbers are remembered per stream; older ones
/// are given up and counted as lost. 65,536 is 1.3 s of a stalled receiver at 50,000
/// records a second (with 4,096 a loaded machine gave records up).
pub const MAX_MISSING: usize = 65_536;
/// The receive buffer asked for by default: 8 MiB, about 10,000 datagrams of a
/// journaled event, 200 ms of a receiver not scheduled at 50,000 records a second.
pub const DEFAULT_RECV_BUFFER: usize = 8 << 20;

const TYPE_RECORD: u8 = 1;
const TYPE_NACK: u8 = 2;
const TYPE_HEARTBEAT: u8 = 3;

type HmacSha256 = Hmac<Sha256>;

/// The per-install key.
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file could not be read.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Group or others may read or write it.
    #[error("key file {path}: mode {mode:04o} lets others read it; it must be 0600 or stricter")]
    Permissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Owned by someone other than root (or the user running this process).
    #[error("key file {path}: owned by uid {uid}; it must be owned by root")]
    Owner {
        /// The file.
        path: String,
        /// Its owner.
        uid: u32,
    },
    /// Not 32 to 64 bytes written as hex.
    #[error("key file {path}: expected 64 to 128 hex digits")]
    Format {
        /// The file.
        path: String,
    },
}

impl Key {
    /// A key from raw bytes (at least 32).
    pub fn from_bytes(bytes: &[u8]) -> Option<Key> {
        (32..=64)
            .contains(&bytes.len())
            .then(|| Key(bytes.to_vec()))
    }

    /// Reads the key file: hex text (64 to 128 digits, surrounding whitespace
    /// allowed), owned by root (or by the current user, who then is the one running
    /// the daemon) with no permission bits for group or others.
    pub fn load(path: &Path) -> Result<Key, KeyError> {
        let name = path.display().to_string();
        let io = |source| KeyError::Io {
            path: name.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions { path: name, mode });
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if meta.uid() != 0 && meta.uid() != euid {
            return Err(KeyError::Owner {
                path: name,
                uid: meta.uid(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let text = text.trim();
        let bad = || KeyError::Format { path: name.clone() };
        if text.len() % 2 != 0 {
            return Err(bad());
        }
        let bytes = (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(bad)?;
        Key::from_bytes(&bytes).ok_or_else(bad)
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length; from_bytes ensured 32..=64 bytes.
        HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }
}

/// Builds one datagram.
pub fn seal(key: &Key, kind: u8, stream_id: u32, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(UDP_HEADER_LEN + payload.len() + MAC_LEN);
    out.extend_from_slice(&UDP_MAGIC);
    out.push(UDP_VERSION);
    out.push(kind);
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(payload);
    let mut mac = key.mac();
    mac.update(&out);
    out.extend_from_slice(&mac.finalize().into_bytes());
    out
}

/// Builds the datagram carrying `record` on `stream_id`.
pub fn seal_record(key: &Key, stream_id: u32, record: &Record) -> Vec<u8> {
    seal(
        key,
        TYPE_RECORD,
        stream_id,
        record.seq,
        &record.encode_to_vec(),
    )
}

/// Builds a heartbeat datagram: `last` is the highest record number sent on
/// `stream_id`.
pub fn seal_heartbeat(key: &Key, stream_id: u32, last: u64) -> Vec<u8> {
    seal(key, TYPE_HEARTBEAT, stream_id, last, &[])
}

/// Why a datagram was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// Shorter than a header and a MAC.
    Truncated,
    /// Larger than the limit.
    Oversized,
    /// Wrong magic, version or type.
    BadHeader,
    /// The MAC does not match: forged, bit-flipped, or under another key.
    BadMac,
    /// Authentic, but its sequence number was already received.
    Replayed,
    /// Authentic, but the payload does not decode or disagrees with the header.
    Malformed,
}

/// An authenticated datagram.
#[derive(Clone, Debug, PartialEq)]
pub enum Datagram {
    /// A record.
    Record {
        /// The stream.
        stream_id: u32,
        /// The record (its `seq` equals the header's).
        record: Record,
    },
    /// A request to resend.
    Nack(Nack),
    /// The sender's highest record number so far: a receiver that has not seen it
    /// lost the stream's tail, which no later record would reveal.
    Heartbeat {
        /// The stream.
        stream_id: u32,
        /// The highest record number sent.
        last: u64,
    },
}

/// Checks and decodes one datagram (without replay checks, which need the stream's
/// state). Constant-time MAC comparison.
pub fn open(key: &Key, bytes: &[u8], max: usize) -> Result<Datagram, Reject> {
    if bytes.len() > max {
        return Err(Reject::Oversized);
    }
    if bytes.len() < UDP_HEADER_LEN + MAC_LEN {
        return Err(Reject::Truncated);
    }
    let (signed, tag) = bytes.split_at(bytes.len() - MAC_LEN);
    if signed[0..2] != UDP_MAGIC || signed[2] != UDP_VERSION {
        return Err(Reject::BadHeader);
    }
    let mut mac = key.mac();
    mac.update(signed);
    mac.verify_slice(tag).map_err(|_| Reject::BadMac)?;
    let stream_id = u32::from_be_bytes([signed[4], signed[5], signed[6], signed[7]]);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&signed[8..16]);
    let seq = u64::from_be_bytes(seq);
    let payload = &signed[UDP_HEADER_LEN..];
    match signed[3] {
        TYPE_RECORD => {
            let record = Record::decode(payload).map_err(|_| Reject::Malformed)?;
            if record.seq != seq {
                return Err(Reject::Malformed);
            }
            Ok(Datagram::Record { stream_id, record })
        }
        TYPE_HEARTBEAT if payload.is_empty() => Ok(Datagram::Heartbeat {
            stream_id,
            last: seq,
        }),
        TYPE_HEARTBEAT => Err(Reject::Malformed),
        TYPE_NACK => {
            let nack = Nack::decode(payload).map_err(|_| Reject::Malformed)?;
            if nack.stream_id != stream_id {
                return Err(Reject::Malformed);
            }
            Ok(Datagram::Nack(nack))
        }
        _ => Err(Reject::BadHeader),
    }
}

/// Counters of a [`UdpReceiver`] (or of a sender's NACK handling).
#[derive(Debug, Default)]
pub struct UdpStats {
    /// Records accepted in order or after a gap.
    pub accepted: AtomicU64,
    /// Records accepted as refills of a gap.
    pub refilled: AtomicU64,
    /// Rejected: shorter than header + MAC.
    pub truncated: AtomicU64,
    /// Rejected: over the size limit.
    pub oversized: AtomicU64,
    /// Rejected: wrong magic, version or type.
    pub bad_header: AtomicU64,
    /// Rejected: MAC mismatch (forged or bit-flipped).
    pub bad_mac: AtomicU64,
    /// Rejected: sequence number already received.
    pub replayed: AtomicU64,
    /// Rejected: authentic but undecodable.
    pub malformed: AtomicU64,
    /// NACK datagrams sent (receiver) or served (sender).
    pub nacks: AtomicU64,
    /// Sequence numbers given up (more than [`MAX_MISSING`] missing at once).
    pub lost: AtomicU64,
}

impl UdpStats {
    fn count(&self, r: Reject) {
        let c = match r {
            Reject::Truncated => &self.truncated,
            Reject::Oversized => &self.oversized,
            Reject::BadHeader => &self.bad_header,
            Reject::BadMac => &self.bad_mac,
            Reject::Replayed => &self.replayed,
            Reject::Malformed => &self.malformed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Total datagrams rejected.
    pub fn rejected(&self) -> u64 {
        [
            &self.truncated,
            &self.oversized,
            &self.bad_header,
            &self.bad_mac,
            &self.replayed,
            &self.malformed,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

/// Where to bind. Anything but loopback must be asked for.
#[derive(Clone, Copy, Debug)]
pub struct UdpConfig {
    /// The address to bind.
    pub bind: SocketAddr,
    /// Allow a non-loopback `bind`.
    pub allow_non_loopback: bool,
    /// The largest datagram accepted.
    pub max_datagram: usize,
    /// The socket receive buffer to ask for, in bytes: forced past the system's
    /// `rmem_max` when the process may (`CAP_NET_ADMIN`), else capped by it. Loopback
    /// UDP drops what does not fit while the receiver is not running.
    pub recv_buffer: usize,
}

impl Default for UdpConfig {
    fn default() -> UdpConfig {
        UdpConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            allow_non_loopback: false,
            max_datagram: DEFAULT_MAX_DATAGRAM,
            recv_buffer: DEFAULT_RECV_BUFFER,
        }
    }
}

async fn bind(config: &UdpConfig) -> io::Result<UdpSocket> {
    if !config.bind.ip().is_loopback() && !config.allow_non_loopback {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "refusing to bind UDP to {}: not loopback (allow_non_loopback is off)",
                config.bind
            ),
        ));
    }
    let socket = UdpSocket::bind(config.bind).await?;
    set_recv_buffer(&socket, config.recv_buffer);
    Ok(socket)
}

/// Asks for a receive buffer of `bytes`: `SO_RCVBUFFORCE` where permitted, else
/// `SO_RCVBUF` (capped by `rmem_max`). Failing leaves the default, which still works,
/// with more refills.
fn set_recv_buffer(socket: &UdpSocket, bytes: usize) {
    use std::os::fd::AsRawFd;
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let set = |opt| {
        // SAFETY: setsockopt on a descriptor we own with a valid int.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    if bytes > 0 && set(libc::SO_RCVBUFFORCE) != 0 {
        set(libc::SO_RCVBUF);
    }
}

/// A fresh random stream id, so that a restarted sender's sequence numbers are not
/// taken for replays of the previous run's.
fn random_stream_id() -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 4 {
        // No entropy source: fall back on time and pid, still distinct per start.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        return t ^ std::process::id().rotate_left(16);
    }
    u32::from_be_bytes(b)
}

/// Sends records to one receiver and answers its NACKs from a [`Replay`] source.
pub struct UdpSender {
    socket: UdpSocket,
    key: Key,
    stream_id: u32,
    peer: SocketAddr,
    replay: Arc<dyn Replay>,
    max: usize,
    /// One more than the highest record number sent; 0 before any.
    sent_end: AtomicU64,
    /// NACKs answered and rejected datagrams received.
    pub stats: UdpStats,
}

impl UdpSender {
    /// Binds per `config` and sends to `peer`.
    pub async fn new(
        config: &UdpConfig,
        peer: SocketAddr,
        key: Key,
        replay: Arc<dyn Replay>,
    ) -> io::Result<UdpSender> {
        Ok(UdpSender {
            socket: bind(config).await?,
            key,
            stream_id: random_stream_id(),
            peer,
            replay,
            max: config.max_datagram,
            sent_end: AtomicU64::new(0),
            stats: UdpStats::default(),
        })
    }

    /// This sender's stream id.
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// The local address (where NACKs come to).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends one record, numbered by its own `seq`.
    pub async fn send(&self, record: &Record) -> io::Result<()> {
        let d = seal_record(&self.key, self.stream_id, record);
        if d.len() > self.max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "record {} makes a {} byte datagram, over {}",
                    record.seq,
                    d.len(),
                    self.max
                ),
            ));
        }
        self.socket.send_to(&d, self.peer).await?;
        self.sent_end
            .fetch_max(record.seq.saturating_add(1), Ordering::Relaxed);
        Ok(())
    }

    /// Sends a heartbeat naming the highest record number sent so far (nothing before
    /// the first record). Send one every so often, and after the last record of a
    /// burst: it is how a receiver learns that the tail of a stream was lost.
    pub async fn heartbeat(&self) -> io::Result<()> {
        let end = self.sent_end.load(Ordering::Relaxed);
        let Some(last) = end.checked_sub(1) else {
            return Ok(());
        };
        let d = seal_heartbeat(&self.key, self.stream_id, last);
        self.socket.send_to(&d, self.peer).await.map(|_| ())
    }

    /// Answers NACKs until the socket fails: each missing record is read from the
    /// replay source and sent again. Run it as a task beside the sending.
    pub async fn serve_nacks(&self) -> io::Result<()> {
        let mut buf = vec![0u8; self.max + 1];
        loop {
            let (n, _) = self.socket.recv_from(&mut buf).await?;
            let nack = match open(&self.key, buf.get(..n).unwrap_or(&[]), self.max) {
                Ok(Datagram::Nack(nack)) if nack.stream_id == self.stream_id => nack,
                Ok(_) => {
                    self.stats.count(Reject::Malformed);
                    continue;
                }
                Err(r) => {
                    self.stats.count(r);
                    continue;
                }
            };
            self.stats.nacks.fetch_add(1, Ordering::Relaxed);
            let mut seqs = nack.seqs;
            seqs.truncate(MAX_MISSING);
            seqs.sort_unstable();
            seqs.dedup();
            // One read per run of consecutive numbers, not one per number.
            let mut i = 0;
            while let Some(&first) = seqs.get(i) {
                let mut j = i + 1;
                while seqs.get(j).is_some_and(|&s| s == first + (j - i) as u64) {
                    j += 1;
                }
                let (replay, count) = (self.replay.clone(), j - i);
                let found = tokio::task::spawn_blocking(move || replay.read_from(first, count))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                for rec in found
                    .iter()
                    .filter(|r| r.seq >= first && r.seq < first + count as u64)
                {
                    match self.send(rec).await {
                        Ok(()) => {}
                        // A record too large for a datagram cannot be refilled either;
                        // the others still can.
                        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {}
                        Err(e) => return Err(e),
                    }
                }
                i = j;
            }
        }
    }
}

/// Per-stream state: what has been received.
#[derive(Debug)]
struct StreamState {
    next: u64,
    missing: BTreeSet<u64>,
}

/// Marks `state.next .. end` missing, keeping the newest [`MAX_MISSING`] and counting
/// the rest as lost (without enumerating a gap of any size).
fn mark_missing(state: &mut StreamState, end: u64, stats: &UdpStats) {
    let start = state.next.max(end.saturating_sub(MAX_MISSING as u64));
    stats
        .lost
        .fetch_add(start - state.next.min(start), Ordering::Relaxed);
    state.missing.extend(start..end);
    while state.missing.len() > MAX_MISSING {
        state.missing.pop_first();
        stats.lost.fetch_add(1, Ordering::Relaxed);
    }
}

/// A record as the receiver hands it out.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    /// The sender's stream.
    pub stream_id: u32,
    /// The record.
    pub record: Record,
    /// True when it fills a gap (it arrives after records numbered above it).
    pub refill: bool,
}

/// Receives records, rejecting and counting anything not authentic, new and
/// well-formed, and asking the sender for what a gap lost.
pub struct UdpReceiver {
    socket: UdpSocket,
    key: Key,
    max: usize,
    streams: HashMap<u32, StreamState>,
    nack_seq: u64,
    /// What was accepted and rejected.
    pub stats: Arc<UdpStats>,
}

impl UdpReceiver {
    /// Binds per `config`.
    pub async fn bind(config: &UdpConfig, key: Key) -> io::Result<UdpReceiver> {
        Ok(UdpReceiver {
            socket: bind(config).await?,
            key,
            max: config.max_datagram,
            streams: HashMap::new(),
            nack_seq: 0,
            stats: Arc::new(UdpStats::default()),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Waits for the next acceptable record. A stream's first datagram sets where it
    /// starts; after that each sequence number is accepted once.
    pub async fn recv(&mut self) -> io::Result<Received> {
        // One byte more than the limit, to tell an oversized datagram from one that
        // just fits.
        let mut buf = vec![0u8; self.max + 1];
        loop {
            let (n, from) = self.socket.recv_from(&mut buf).await?;
            let bytes = buf.get(..n).unwrap_or(&[]);
            let (stream_id, record) = match open(&self.key, bytes, self.max) {
                Ok(Datagram::Record { stream_id, record }) => (stream_id, record),
                Ok(Datagram::Heartbeat { stream_id, last }) => {
                    self.heartbeat(stream_id, last, from).await?;
                    continue;
                }
                Ok(Datagram::Nack(_)) => {
                    self.stats.count(Reject::Malformed);
                    continue;
                }
                Err(r) => {
                    self.stats.count(r);
                    continue;
                }
            };
            let seq = record.seq;
            let state = self.streams.entry(stream_id).or_insert(StreamState {
                next: seq,
                missing: BTreeSet::new(),
            });
            let refill = if seq >= state.next {
                // Ask for this gap only: numbers missing from earlier gaps were asked
                // for then, and are asked again at the next heartbeat.
                let gap_start = state.next.max(seq.saturating_sub(MAX_MISSING as u64));
                mark_missing(state, seq, &self.stats);
                state.next = seq.saturating_add(1);
                if gap_start < seq {
                    let seqs: Vec<u64> = state.missing.range(gap_start..seq).copied().collect();
                    self.send_nack(stream_id, seqs, from).await?;
                }
                false
            } else if state.missing.remove(&seq) {
                true
            } else {
                self.stats.count(Reject::Replayed);
                continue;
            };
            if refill {
                self.stats.refilled.fetch_add(1, Ordering::Relaxed);
            } else {
                self.stats.accepted.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(Received {
                stream_id,
                record,
                refill,
            });
        }
    }

    /// A heartbeat: records up to `last` exist; ask for every one not received (this
    /// is also when earlier requests that went unanswered are repeated). A
    /// heartbeat of a stream never seen says nothing about where it started, and is
    /// ignored; an old (replayed) one only repeats requests for what is still missing.
    async fn heartbeat(&mut self, stream_id: u32, last: u64, from: SocketAddr) -> io::Result<()> {
        let Some(state) = self.streams.get_mut(&stream_id) else {
            return Ok(());
        };
        if last >= state.next {
            mark_missing(state, last.saturating_add(1), &self.stats);
            state.next = last.saturating_add(1);
        }
        if state.missing.is_empty() {
            return Ok(());
        }
        let seqs: Vec<u64> = state.missing.iter().copied().collect();
        self.send_nack(stream_id, seqs, from).await
    }

    /// Sequence numbers still missing on `stream_id`.
    pub fn missing(&self, stream_id: u32) -> Vec<u64> {
        self.streams
            .get(&stream_id)
            .map(|s| s.missing.iter().copied().collect())
            .unwrap_or_default()
    }

    async fn send_nack(
        &mut self,
        stream_id: u32,
        seqs: Vec<u64>,
        to: SocketAddr,
    ) -> io::Result<()> {
        // Split so that each NACK fits the datagram limit: a packed u64 is at most 10
        // bytes.
        let per = ((self.max.saturating_sub(UDP_HEADER_LEN + MAC_LEN + 16)) / 10).max(1);
        for chunk in seqs.chunks(per) {
            let nack = Nack {
                stream_id,
                seqs: chunk.to_vec(),
            };
            self.nack_seq += 1;
            let d = seal(
                &self.key,
                TYPE_NACK,
                stream_id,
                self.nack_seq,
                &nack.encode_to_vec(),
            );
            self.socket.send_to(&d, to).await?;
            self.stats.nacks.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key::from_bytes(&[7u8; 32]).unwrap()
    }

    #[test]
    fn layout_and_mac_input() {
        let d = seal(&key(), TYPE_RECORD, 0x01020304, 5, b"xy");
        assert_eq!(&d[..16], b"AU\x01\x01\x01\x02\x03\x04\0\0\0\0\0\0\0\x05");
        assert_eq!(&d[16..18], b"xy");
        let mut mac = HmacSha256::new_from_slice(&[7u8; 32]).unwrap();
        mac.update(&d[..18]);
        assert_eq!(&d[18..], &mac.finalize().into_bytes()[..]);
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let rec = Record {
            seq: 3,
            time_ns: 4,
            kind: 1,
            name: "exec".into(),
            data: b"{}".to_vec(),
        };
        let d = seal_record(&key(), 9, &rec);
        assert_eq!(
            open(&key(), &d, 8192),
            Ok(Datagram::Record {
                stream_id: 9,
                record: rec
            })
        );
        for i in 0..d.len() * 8 {
            let mut bad = d.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let r = open(&key(), &bad, 8192);
            assert!(
                matches!(r, Err(Reject::BadMac | Reject::BadHeader)),
                "bit {i}: {r:?}"
            );
        }
        for n in 0..UDP_HEADER_LEN + MAC_LEN {
            assert_eq!(open(&key(), &d[..n], 8192), Err(Reject::Truncated));
        }
        assert_eq!(open(&key(), &d[..d.len() - 1], 8192), Err(Reject::BadMac));
        assert_eq!(open(&key(), &d, d.len() - 1), Err(Reject::Oversized));
        let other = Key::from_bytes(&[8u8; 32]).unwrap();
        assert_eq!(open(&other, &d, 8192), Err(Reject::BadMac));
    }
}
