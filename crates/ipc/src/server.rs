//! The Unix-socket transport: a server publishing journal records to subscribers,
//! each from its own cursor, and obeying control commands from root.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter, Interest};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast;
use tokio::task::JoinSet;

use crate::auth::{Authorize, PeerCred};
use crate::fdpass::{self, Received, Unfit};
use crate::frame::{self, Decoder, FrameError};
use crate::msg::{
    Body, Control, ControlReply, Error as ErrorMsg, ErrorCode, Frame, Lagged, Record, RingAttach,
    ScanErrorCode, ScanFd, ScanResult, Subscribe, Welcome,
};
use crate::ring::{AttachAt, RingWriter};

/// Where a subscription's past comes from: the journal. `read_from(seq, max)` returns
/// up to `max` committed records with sequence numbers `>= seq`, in order; fewer than
/// `max` means "that is all for now".
///
/// The contract with [`Hub::publish`]: a record is published only after `read_from`
/// can return it. That is what lets a subscriber switch from replay to live records
/// with no gap.
pub trait Replay: Send + Sync + 'static {
    /// Records from `seq` on, at most `max`.
    fn read_from(&self, seq: u64, max: usize) -> Result<Vec<Record>, String>;
}

/// The answer to control commands, for peers [`Authorize::may_control`] allows.
/// Queries (commands that change nothing, such as `status`) may be answered for any
/// peer allowed to connect. [`ControlHandler::control`] runs on a blocking thread:
/// a command may take seconds (a reload compiles a database).
pub trait ControlHandler: Send + Sync + 'static {
    /// Carries out `command` for `peer`.
    fn control(&self, peer: &PeerCred, command: &Control) -> ControlReply;
    /// Whether `command` only reads, so that any connected peer may send it.
    fn is_query(&self, command: &str) -> bool {
        let _ = command;
        false
    }
}

/// What the server refused before reading or acting on anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// A peer [`Authorize::may_connect`] does not allow.
    Connect,
    /// A control command from a peer [`Authorize::may_control`] does not allow
    /// (and which is not a query).
    Control,
    /// A [`ScanFd`] answered with a refusal before its descriptor was read: no
    /// descriptor, not a regular file, not open for reading, no scanner, or a
    /// subscribed connection.
    Scan,
}

impl Refused {
    /// The name journaled for it: `connect`, `control`, `scan`.
    pub fn name(self) -> &'static str {
        match self {
            Refused::Connect => "connect",
            Refused::Control => "control",
            Refused::Scan => "scan",
        }
    }
}

/// Told of every refusal, so that the daemon can journal who was refused and
/// why, and count them. Runs on the connection's task: it must only queue.
pub trait RefusalLog: Send + Sync + 'static {
    /// `peer` was refused `what` because of `reason`.
    fn refused(&self, peer: &PeerCred, what: Refused, reason: &str);
}

/// A scan in progress; it resolves to the request's answer.
pub type ScanFuture = Pin<Box<dyn Future<Output = ScanResult> + Send>>;

/// What scans the descriptors clients pass with [`ScanFd`] requests.
///
/// The server has already checked that `file` is a regular file open for
/// reading; the handler scans it (on its own pool: the future should wait for
/// a scanning slot, not a blocking thread) and answers. The server sets the
/// answer's `id`. Any connected peer may scan: the descriptor proves it could
/// open the file.
pub trait ScanHandler: Send + Sync + 'static {
    /// Scans `file` for `peer` as `request` asks.
    fn scan(&self, peer: &PeerCred, request: ScanFd, file: File) -> ScanFuture;
}

/// The live side: records published here go to every subscriber that has caught up.
/// Publishing never waits: each subscriber may fall a bounded number of records
/// behind; past that it is told it lagged and catches up from the [`Replay`] source on
/// its own connection, so the publisher (the sensor) is never slowed and memory stays
/// bounded.
///
/// Records are published in batches ([`Hub::publish_batch`]), as a journal commits
/// them: a batch is framed once, and a subscriber that is caught up is woken once per
/// batch and writes it with one system call. With 16 subscribers at 50,000 records a
/// second, waking each one per record (800,000 wake-ups and writes a second) was what
/// saturated two cores; per batch it is a few thousand.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<Published>>,
    ring: Arc<Mutex<RingSlot>>,
    /// Subscribers reading the ring now.
    in_ring: Arc<AtomicUsize>,
}

/// Counts a subscriber as reading the ring while it lives.
struct InRing(Arc<AtomicUsize>);

impl InRing {
    fn new(count: &Arc<AtomicUsize>) -> InRing {
        count.fetch_add(1, Ordering::Relaxed);
        InRing(count.clone())
    }
}

impl Drop for InRing {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The hub's shared-memory ring, made when the first subscriber asks for it.
struct RingSlot {
    /// Data bytes; 0: no ring.
    capacity: usize,
    writer: Option<RingWriter>,
    /// Why the ring could not be made (it is not tried again).
    failed: Option<String>,
}

/// The shared-memory ring's state ([`Hub::ring_status`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RingStatus {
    /// Its data bytes, once made (it is made for the first subscriber that
    /// asks for it).
    pub bytes: Option<u64>,
    /// Subscribers reading live records from it now.
    pub readers: usize,
    /// Why it could not be made: its subscribers are served on their sockets.
    pub failed: Option<String>,
}

/// The ring's size unless [`Hub::with_ring_capacity`] says otherwise: 16 MiB,
/// about 60,000 exec events, over a second at 50,000 events a second.
pub const DEFAULT_RING_CAPACITY: usize = 16 << 20;

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("subscribers", &self.tx.receiver_count())
            .finish_non_exhaustive()
    }
}

/// Records per published batch at most; larger batches are split, so that one slot of
/// the hub never holds more than this.
pub const MAX_BATCH: usize = 256;

/// Published records, framed once for every subscriber: `frames` holds the frames one
/// after the other, `ends[i]` is where record `seqs[i]`'s frame ends.
#[derive(Debug)]
struct Published {
    seqs: Vec<u64>,
    ends: Vec<usize>,
    frames: Vec<u8>,
}

impl Published {
    fn first(&self) -> u64 {
        self.seqs.first().copied().unwrap_or(0)
    }

    fn last(&self) -> u64 {
        self.seqs.last().copied().unwrap_or(0)
    }

    /// The frames of the records numbered `next` or more.
    fn from(&self, next: u64) -> &[u8] {
        let i = self.seqs.partition_point(|&s| s < next);
        let start = match i.checked_sub(1) {
            Some(j) => self.ends.get(j).copied().unwrap_or(self.frames.len()),
            None => 0,
        };
        self.frames.get(start..).unwrap_or(&[])
    }
}

impl Hub {
    /// A hub that holds the last `capacity` published batches for its slowest
    /// subscriber: one falling further behind is told it lagged. Memory is bounded by
    /// `capacity` batches of at most [`MAX_BATCH`] records (a publisher of single
    /// records: `capacity` records).
    pub fn new(capacity: usize) -> Hub {
        Hub {
            tx: broadcast::channel(capacity.max(1)).0,
            ring: Arc::new(Mutex::new(RingSlot {
                capacity: DEFAULT_RING_CAPACITY,
                writer: None,
                failed: None,
            })),
            in_ring: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Sets the shared-memory ring's size in bytes (rounded up to a power of
    /// two, at least 64 KiB); 0: no ring, every subscriber is served on its
    /// socket. Takes effect if no ring was made yet.
    pub fn with_ring_capacity(self, bytes: usize) -> Hub {
        if let Ok(mut slot) = self.ring.lock() {
            slot.capacity = bytes;
        }
        self
    }

    /// Where a subscriber holding every record before `next` attaches to the
    /// ring, and the ring's descriptor to pass; `None`: no ring.
    fn attach(&self, next: u64) -> Option<(AttachAt, OwnedFd)> {
        let mut slot = self.ring.lock().ok()?;
        if slot.writer.is_none() {
            if slot.capacity == 0 || slot.failed.is_some() {
                return None;
            }
            match RingWriter::new(slot.capacity) {
                Ok(w) => {
                    let fd = w.fd().try_clone_to_owned().ok()?;
                    slot.writer = Some(w);
                    // Records published before the ring existed are not in it:
                    // the subscriber reads the journal once more first.
                    return Some((AttachAt::Behind, fd));
                }
                Err(e) => {
                    slot.failed = Some(e.to_string());
                    return None;
                }
            }
        }
        let w = slot.writer.as_ref()?;
        Some((w.attach_at(next), w.fd().try_clone_to_owned().ok()?))
    }

    /// Why the ring could not be made, if it could not.
    pub fn ring_failure(&self) -> Option<String> {
        self.ring.lock().ok()?.failed.clone()
    }

    /// The ring as `status` reports it.
    pub fn ring_status(&self) -> RingStatus {
        let (bytes, failed) = match self.ring.lock() {
            Ok(slot) => (
                slot.writer.as_ref().map(|w| w.capacity()),
                slot.failed.clone(),
            ),
            Err(_) => (None, None),
        };
        RingStatus {
            bytes,
            readers: self.in_ring.load(Ordering::Relaxed),
            failed,
        }
    }

    /// Sends a committed record to the subscribers.
    pub fn publish(&self, record: Record) {
        self.publish_batch(vec![record]);
    }

    /// Sends committed records to the subscribers, in ascending sequence order (as
    /// one journal commit gives them).
    pub fn publish_batch(&self, records: Vec<Record>) {
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            let mut p = Published {
                seqs: Vec::new(),
                ends: Vec::new(),
                frames: Vec::new(),
            };
            for record in records.by_ref().take(MAX_BATCH) {
                p.seqs.push(record.seq);
                frame::encode_record_into(&record, &mut p.frames);
                p.ends.push(p.frames.len());
            }
            if let Ok(mut slot) = self.ring.lock()
                && let Some(w) = slot.writer.as_mut()
            {
                w.publish(&p.seqs, &p.ends, &p.frames);
            }
            // No receiver is not an error: nobody is subscribed.
            if self.tx.receiver_count() > 0 {
                let _ = self.tx.send(Arc::new(p));
            }
        }
    }

    /// Subscribers currently receiving live records, on their sockets or
    /// from the ring.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count() + self.in_ring.load(Ordering::Relaxed)
    }
}

/// How a [`Server`] treats its peers.
#[derive(Clone)]
pub struct ServerConfig {
    /// The largest frame payload accepted from a client.
    pub max_frame: usize,
    /// Once a frame has begun, the rest of it must arrive within this time, or the
    /// connection is closed (a slowloris client holds nothing for long).
    pub frame_timeout: Duration,
    /// Who may connect and who may send control commands.
    pub authorize: Arc<dyn Authorize>,
    /// What answers control commands; `None`: every command is refused.
    pub control: Option<Arc<dyn ControlHandler>>,
    /// What scans passed descriptors; `None`: every [`ScanFd`] is refused.
    pub scan: Option<Arc<dyn ScanHandler>>,
    /// [`ScanFd`] requests one connection may have in flight; past it the
    /// server reads nothing more from that connection until one is answered.
    pub max_scans_in_flight: usize,
    /// Told of every refusal; `None`: refusals are only answered.
    pub refusals: Option<Arc<dyn RefusalLog>>,
}

/// One read into the decoder's buffer, with the descriptors that came with it.
async fn recv(rd: &OwnedReadHalf, dec: &mut Decoder) -> io::Result<(usize, Received)> {
    let sock = rd.as_ref();
    let raw = sock.as_raw_fd();
    let mut got = Received::default();
    loop {
        sock.readable().await?;
        let buf = dec.buffer();
        match sock.try_io(Interest::READABLE, || {
            fdpass::recv_with_fds(raw, buf, &mut got)
        }) {
            Ok(n) => return Ok((n, got)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Resolves at `deadline`, or never without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Records read from the [`Replay`] source per call.
const REPLAY_BATCH: usize = 512;

/// A listening server.
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    shared: Arc<Shared>,
}

struct Shared {
    config: ServerConfig,
    hub: Hub,
    replay: Arc<dyn Replay>,
}

impl Server {
    /// Binds a Unix socket at `path` with permission bits `mode` (the daemon uses
    /// 0660 with group `aether`). Fails if `path` exists.
    pub fn bind(
        path: &Path,
        mode: u32,
        config: ServerConfig,
        hub: Hub,
        replay: Arc<dyn Replay>,
    ) -> io::Result<Server> {
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        Ok(Server {
            listener,
            path: path.to_path_buf(),
            shared: Arc::new(Shared {
                config,
                hub,
                replay,
            }),
        })
    }

    /// Serves on a listener bound by the caller (a daemon binds its sockets before
    /// going to the background, so that errors reach its terminal). `path` is the
    /// socket's path, for [`Server::path`].
    pub fn from_std(
        listener: std::os::unix::net::UnixListener,
        path: &Path,
        config: ServerConfig,
        hub: Hub,
        replay: Arc<dyn Replay>,
    ) -> io::Result<Server> {
        listener.set_nonblocking(true)?;
        Ok(Server {
            listener: UnixListener::from_std(listener)?,
            path: path.to_path_buf(),
            shared: Arc::new(Shared {
                config,
                hub,
                replay,
            }),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts and serves connections until the listener fails. Each connection runs
    /// as its own task; an error on one ends only that one.
    pub async fn run(self) -> io::Result<()> {
        loop {
            let (stream, _) = self.listener.accept().await?;
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let _ = serve(stream, shared).await;
            });
        }
    }
}

/// Why a connection ended early.
#[derive(Debug)]
enum ConnError {
    Io,
    Frame,
}

impl From<io::Error> for ConnError {
    fn from(_: io::Error) -> ConnError {
        ConnError::Io
    }
}

struct Conn {
    rd: OwnedReadHalf,
    wr: BufWriter<OwnedWriteHalf>,
    dec: Decoder,
    peer: PeerCred,
    shared: Arc<Shared>,
    /// Bytes received so far: frames and descriptors are paired by position.
    received: u64,
    /// Passed descriptors not yet claimed by a [`ScanFd`], oldest first.
    fds: VecDeque<PassedFd>,
    /// Scans in flight, and the request id of each task.
    scans: JoinSet<ScanResult>,
    scan_ids: HashMap<tokio::task::Id, u64>,
}

/// A descriptor and the bytes of the read that brought it: `[start, end)` in
/// the connection's byte stream. The kernel ends a read right after the bytes
/// of the `sendmsg` that carried descriptors, so they belong to the frame that
/// starts in that range and runs to its end (or past it).
struct PassedFd {
    fd: OwnedFd,
    start: u64,
    end: u64,
}

async fn serve(stream: UnixStream, shared: Arc<Shared>) -> Result<(), ConnError> {
    let cred = stream.peer_cred()?;
    let peer = PeerCred {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid(),
    };
    let (rd, wr) = stream.into_split();
    let mut conn = Conn {
        rd,
        wr: BufWriter::new(wr),
        dec: Decoder::new(shared.config.max_frame),
        peer,
        shared,
        received: 0,
        fds: VecDeque::new(),
        scans: JoinSet::new(),
        scan_ids: HashMap::new(),
    };
    let auth = &conn.shared.config.authorize;
    if !auth.may_connect(&peer) {
        let why = format!("uid {} gid {} may not connect", peer.uid, peer.gid);
        conn.refused(Refused::Connect, &why);
        conn.error(ErrorCode::PermissionDenied, why).await?;
        return Ok(());
    }
    let welcome = Welcome {
        version: u32::from(frame::VERSION),
        uid: peer.uid,
        control_allowed: auth.may_control(&peer),
        max_scans_in_flight: match conn.shared.config.scan {
            Some(_) => u32::try_from(conn.shared.config.max_scans_in_flight).unwrap_or(u32::MAX),
            None => 0,
        },
    };
    conn.write(&Frame::new(Body::Welcome(welcome))).await?;
    conn.wr.flush().await?;
    conn.requests().await
}

impl Conn {
    fn refused(&self, what: Refused, reason: &str) {
        if let Some(log) = &self.shared.config.refusals {
            log.refused(&self.peer, what, reason);
        }
    }

    async fn write(&mut self, frame: &Frame) -> io::Result<()> {
        self.wr.write_all(&frame::encode(frame)).await
    }

    async fn error(&mut self, code: ErrorCode, message: String) -> io::Result<()> {
        let e = ErrorMsg {
            code: code as i32,
            message,
        };
        self.write(&Frame::new(Body::Error(e))).await?;
        self.wr.flush().await
    }

    /// Serves requests until the client subscribes or goes: control commands
    /// one at a time, scans pipelined up to the connection's limit.
    async fn requests(&mut self) -> Result<(), ConnError> {
        let max = self.shared.config.max_scans_in_flight.max(1);
        let frame_timeout = self.shared.config.frame_timeout;
        // Since when a frame has been waiting for its end; reset by every frame
        // taken and while reading is paused for the scans in flight.
        let mut partial_since: Option<tokio::time::Instant> = None;
        loop {
            let mut progressed = false;
            // Take what is buffered while there is room for more scans.
            while self.scans.len() < max {
                let start = self.received - self.dec.buffered() as u64;
                let Some(f) = self.take_frame().await? else {
                    break;
                };
                progressed = true;
                let end = self.received - self.dec.buffered() as u64;
                match f.body {
                    Some(Body::Subscribe(s)) => {
                        self.finish_scans().await?;
                        self.fds.clear();
                        return self.subscription(s).await;
                    }
                    Some(Body::ScanFd(req)) => self.start_scan(req, start, end).await?,
                    other => {
                        self.check_stray_fds(start).await?;
                        self.handle(other).await?
                    }
                }
            }
            self.wr.flush().await?;
            let reading = self.scans.len() < max;
            if progressed || !reading || self.dec.buffered() == 0 {
                partial_since = None;
            }
            if reading && self.dec.buffered() > 0 && partial_since.is_none() {
                partial_since = Some(tokio::time::Instant::now());
            }
            let deadline = partial_since.map(|t| t + frame_timeout);
            tokio::select! {
                r = recv(&self.rd, &mut self.dec), if reading => {
                    let (n, got) = r?;
                    self.account(n, got).await?;
                    if n == 0 {
                        // The client may have only shut down its side: it
                        // still gets every answer it is owed.
                        self.finish_scans().await?;
                        return match self.dec.finish() {
                            Ok(()) => Ok(()),
                            Err(_) => Err(ConnError::Frame),
                        };
                    }
                }
                Some(done) = self.scans.join_next_with_id(), if !self.scans.is_empty() => {
                    self.answer(done).await?;
                }
                _ = sleep_until(deadline), if reading && deadline.is_some() => {
                    let _ = self
                        .error(
                            ErrorCode::BadFrame,
                            format!("frame not completed within {frame_timeout:?}"),
                        )
                        .await;
                    return Err(ConnError::Frame);
                }
            }
        }
    }

    /// Accounts for one read of `n` bytes and the descriptors that came with it.
    async fn account(&mut self, n: usize, got: Received) -> Result<(), ConnError> {
        let start = self.received;
        self.received += n as u64;
        if got.truncated || got.fds.len() > 1 {
            let _ = self
                .error(
                    ErrorCode::BadFrame,
                    "more than one descriptor in one message: pass exactly one with each ScanFd"
                        .into(),
                )
                .await;
            return Err(ConnError::Frame);
        }
        let max = self.shared.config.max_scans_in_flight.max(1);
        for fd in got.fds {
            if self.fds.len() > max {
                let _ = self
                    .error(
                        ErrorCode::BadFrame,
                        "descriptors passed without ScanFd requests".into(),
                    )
                    .await;
                return Err(ConnError::Frame);
            }
            self.fds.push_back(PassedFd {
                fd,
                start,
                end: self.received,
            });
        }
        Ok(())
    }

    /// A descriptor whose bytes all lie before `start` was claimed by no
    /// request: the client and server no longer agree which descriptor goes
    /// with which request, so the connection ends.
    async fn check_stray_fds(&mut self, start: u64) -> Result<(), ConnError> {
        if self.fds.front().is_some_and(|p| p.end <= start) {
            let _ = self
                .error(
                    ErrorCode::BadFrame,
                    "a descriptor was passed with bytes that are not a ScanFd frame".into(),
                )
                .await;
            return Err(ConnError::Frame);
        }
        Ok(())
    }

    /// Checks a request and its descriptor (the frame spans `[start, end)` of
    /// the stream) and starts the scan, or answers with a refusal at once.
    async fn start_scan(&mut self, req: ScanFd, start: u64, end: u64) -> Result<(), ConnError> {
        self.check_stray_fds(start).await?;
        let id = req.id;
        let passed = match self.fds.front() {
            Some(p) if p.start <= start && start < p.end && end >= p.end => self.fds.pop_front(),
            _ => None,
        };
        let refuse = |code, message: String| ScanResult::refused(id, code, message);
        let refusal = match (&self.shared.config.scan, passed) {
            (None, _) => Some(refuse(
                ScanErrorCode::NotAllowed,
                "this server does not scan".into(),
            )),
            (Some(_), None) => Some(refuse(
                ScanErrorCode::NoDescriptor,
                "no descriptor came with the request".into(),
            )),
            (Some(handler), Some(p)) => match fdpass::readable_regular_file(p.fd) {
                Ok(file) => {
                    let task = handler.scan(&self.peer, req, file);
                    let handle = self.scans.spawn(task);
                    self.scan_ids.insert(handle.id(), id);
                    None
                }
                Err((Unfit::NotRegular, why)) => Some(refuse(ScanErrorCode::NotRegular, why)),
                Err((Unfit::NotReadable, why)) => Some(refuse(ScanErrorCode::NotReadable, why)),
            },
        };
        if let Some(r) = refusal {
            let why = r.error.as_ref().map_or("", |e| e.message.as_str());
            self.refused(Refused::Scan, why);
            self.write_result(r).await?;
        }
        Ok(())
    }

    /// Sends a finished scan's answer, under the request's id.
    async fn answer(
        &mut self,
        done: Result<(tokio::task::Id, ScanResult), tokio::task::JoinError>,
    ) -> Result<(), ConnError> {
        let (task, result) = match done {
            Ok((task, r)) => (task, Ok(r)),
            Err(e) => (e.id(), Err(e.to_string())),
        };
        let id = self.scan_ids.remove(&task).unwrap_or_default();
        let result = match result {
            Ok(mut r) => {
                r.id = id;
                r
            }
            Err(why) => ScanResult::refused(
                id,
                ScanErrorCode::Internal,
                format!("the scan failed: {why}"),
            ),
        };
        self.write_result(result).await
    }

    /// Sends one answer. A client that does not read its answers only stalls
    /// its own connection (a paused pager is not an attack): with the window
    /// full, nothing more is read from it, so what it holds stays bounded.
    async fn write_result(&mut self, r: ScanResult) -> Result<(), ConnError> {
        self.write(&Frame::new(Body::ScanResult(r))).await?;
        // Answers go out as they finish unless more are already waiting.
        if self.scans.is_empty() || self.dec.buffered() == 0 {
            self.wr.flush().await?;
        }
        Ok(())
    }

    /// Waits for every scan in flight and sends its answer.
    async fn finish_scans(&mut self) -> Result<(), ConnError> {
        while let Some(done) = self.scans.join_next_with_id().await {
            self.answer(done).await?;
        }
        self.wr.flush().await?;
        Ok(())
    }

    /// A buffered frame, if there is one; a framing error is reported to the peer.
    async fn take_frame(&mut self) -> Result<Option<Frame>, ConnError> {
        match self.dec.next_frame() {
            Ok(f) => Ok(f),
            Err(e) => {
                let _ = self.bad_frame(e).await;
                Err(ConnError::Frame)
            }
        }
    }

    async fn bad_frame(&mut self, e: FrameError) -> io::Result<()> {
        self.error(ErrorCode::BadFrame, e.to_string()).await
    }

    /// Frames other than Subscribe.
    async fn handle(&mut self, body: Option<Body>) -> io::Result<()> {
        match body {
            Some(Body::Hello(_)) => Ok(()),
            Some(Body::ScanFd(req)) => {
                // Only reached once subscribed: the records stream owns the
                // connection, and reads there take no descriptors.
                let why = "scans are not taken on a subscribed connection";
                self.refused(Refused::Scan, why);
                let r = ScanResult::refused(req.id, ScanErrorCode::NotAllowed, why);
                self.write(&Frame::new(Body::ScanResult(r))).await?;
                self.wr.flush().await
            }
            Some(Body::Control(c)) => {
                let shared = self.shared.clone();
                let allowed = shared.config.authorize.may_control(&self.peer)
                    || shared
                        .config
                        .control
                        .as_ref()
                        .is_some_and(|h| h.is_query(&c.command));
                let reply = match &shared.config.control {
                    _ if !allowed => {
                        let message =
                            format!("uid {} may not send control commands", self.peer.uid);
                        self.refused(Refused::Control, &format!("{:?}: {message}", c.command));
                        ControlReply {
                            id: c.id,
                            ok: false,
                            message,
                        }
                    }
                    None => ControlReply {
                        id: c.id,
                        ok: false,
                        message: "this server takes no control commands".into(),
                    },
                    Some(handler) => {
                        let (handler, peer, id) = (handler.clone(), self.peer, c.id);
                        tokio::task::spawn_blocking(move || handler.control(&peer, &c))
                            .await
                            .unwrap_or_else(|e| ControlReply {
                                id,
                                ok: false,
                                message: format!("the command failed: {e}"),
                            })
                    }
                };
                self.write(&Frame::new(Body::ControlReply(reply))).await?;
                self.wr.flush().await
            }
            Some(_) | None => {
                self.error(
                    ErrorCode::UnknownMessage,
                    "message not understood here; ignored".into(),
                )
                .await
            }
        }
    }

    /// Serves a subscription until the client goes; a client may subscribe
    /// again on the same connection (from the ring after it was overrun).
    async fn subscription(&mut self, mut sub: Subscribe) -> Result<(), ConnError> {
        loop {
            let again = if sub.shared_memory {
                self.stream_ring(sub.since).await?
            } else {
                self.stream(sub.since).await?
            };
            match again {
                Some(s) => sub = s,
                None => return Ok(()),
            }
        }
    }

    /// Sends records from `since` on over the socket until caught up, then
    /// hands the client the ring to read live records from. Without a ring (or
    /// a ring too small to catch up into) the records go on over the socket.
    /// `Some`: the client subscribed again.
    async fn stream_ring(&mut self, since: u64) -> Result<Option<Subscribe>, ConnError> {
        let mut next = since;
        // A ring that keeps outrunning the replay is given up for the socket.
        for _ in 0..8 {
            self.catch_up(&mut next).await?;
            match self.shared.hub.attach(next) {
                Some((AttachAt::Position(position), fd)) => {
                    let attach = RingAttach {
                        position,
                        next_seq: next,
                    };
                    self.send_with_fd(&Frame::new(Body::RingAttach(attach)), &fd)
                        .await?;
                    let _counted = InRing::new(&self.shared.hub.in_ring);
                    return self.attached().await;
                }
                Some((AttachAt::Behind, _)) => continue,
                None => break,
            }
        }
        self.stream(next).await
    }

    /// Sends `frame` with `fd` attached to its first byte.
    async fn send_with_fd(&mut self, frame: &Frame, fd: &OwnedFd) -> io::Result<()> {
        let data = frame::encode(frame);
        self.wr.flush().await?;
        let sock: &UnixStream = self.wr.get_ref().as_ref();
        let raw = sock.as_raw_fd();
        let sent = loop {
            sock.writable().await?;
            match sock.try_io(Interest::WRITABLE, || {
                fdpass::send_with_fd(raw, &data, fd.as_fd())
            }) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        self.wr.write_all(data.get(sent..).unwrap_or(&[])).await?;
        self.wr.flush().await
    }

    /// The client reads the ring: the connection carries only its requests.
    async fn attached(&mut self) -> Result<Option<Subscribe>, ConnError> {
        loop {
            while let Some(f) = self.take_frame().await? {
                match f.body {
                    Some(Body::Subscribe(s)) => return Ok(Some(s)),
                    other => self.handle(other).await?,
                }
            }
            if self.rd.read_buf(self.dec.buffer()).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// Sends records from `since` on: replayed, then live, then replayed again after
    /// a lag, never with a gap or a duplicate. `Some`: the client subscribed again.
    async fn stream(&mut self, since: u64) -> Result<Option<Subscribe>, ConnError> {
        let mut next = since;
        loop {
            // Subscribe to live records before replaying, so that nothing published
            // during the replay is missed; what the replay already sent is skipped.
            let mut rx = self.shared.hub.tx.subscribe();
            self.catch_up(&mut next).await?;
            loop {
                tokio::select! {
                    r = rx.recv() => match r {
                        Ok(batch) => {
                            if batch.first() > next {
                                // Published before this subscription caught up to it:
                                // the journal has what lies between.
                                self.catch_up(&mut next).await?;
                            }
                            if batch.last() >= next {
                                self.wr.write_all(batch.from(next)).await?;
                                next = batch.last() + 1;
                            }
                            if rx.is_empty() {
                                self.wr.flush().await?;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            let lag = Lagged { resume_from: next };
                            self.write(&Frame::new(Body::Lagged(lag))).await?;
                            self.wr.flush().await?;
                            break;
                        }
                        Err(broadcast::error::RecvError::Closed) => return Ok(None),
                    },
                    n = self.rd.read_buf(self.dec.buffer()) => {
                        if n? == 0 {
                            return Ok(None);
                        }
                        while let Some(f) = self.take_frame().await? {
                            match f.body {
                                Some(Body::Subscribe(s)) => return Ok(Some(s)),
                                other => self.handle(other).await?,
                            }
                        }
                    }
                }
            }
        }
    }

    /// Sends what the journal has from `next` on.
    async fn catch_up(&mut self, next: &mut u64) -> Result<(), ConnError> {
        loop {
            let replay = self.shared.replay.clone();
            let from = *next;
            let batch = tokio::task::spawn_blocking(move || replay.read_from(from, REPLAY_BATCH))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r);
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    self.error(ErrorCode::ReplayFailed, e).await?;
                    return Err(ConnError::Io);
                }
            };
            let full = batch.len() >= REPLAY_BATCH;
            // Framed into one buffer and written with one call, as live batches are.
            let mut frames = Vec::new();
            for rec in batch {
                if rec.seq >= *next {
                    *next = rec.seq + 1;
                    frame::encode_record_into(&rec, &mut frames);
                }
            }
            self.wr.write_all(&frames).await?;
            self.wr.flush().await?;
            if !full {
                return Ok(());
            }
        }
    }
}
